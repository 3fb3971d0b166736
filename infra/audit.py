"""The auditors' reads of the event store, in SQL: a stream's history, the global log in pages or
as an unbounded iterator in constant memory, and the walk of the tamper-evidence chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine, Row, Select, String, Table, cast, select

from domain.application import Cohortline
from domain.audit import AuditedEvent
from domain.events import Fact
from infra.chain import ChainedRow, Verdict, verify

CHUNK = 2000
PROGRESS_EVERY = 100_000


class SqlAuditTrail:
    def __init__(self, engine: Engine, event_store: Cohortline, events: Table):
        self.engine = engine
        self.event_store = event_store
        self.events = events

    def head(self) -> int:
        return self.event_store.recorder.max_notification_id() or 0

    def stream(self, stream_id: UUID) -> list[AuditedEvent]:
        """The stream's events in version order."""
        c = self.events.c
        query = self._columns().where(c.originator_id == stream_id).order_by(c.originator_version)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._audited(row) for row in rows]  # decoded after the read: it may look up keys

    def log(self, after: int, limit: int) -> list[AuditedEvent]:
        """Up to `limit` events of the global log above position `after`, in order."""
        return [self._audited(row) for row in self._rows(after, limit)]

    def sealed_log(self, after: int, limit: int) -> list[AuditedEvent]:
        """As `log`, with personal fields left sealed (for projections and the relay)."""
        return [self._audited(row, sealed=True) for row in self._rows(after, limit)]

    def follow(self, after: int = 0) -> Iterator[AuditedEvent]:
        """Every event above `after`, read a chunk at a time (constant memory)."""
        for row in self._chunked(after):
            yield self._audited(row)

    def verify(self, progress: Callable[[int], None] | None = None) -> Verdict:
        """Walk the chain; `progress` is told the position reached every PROGRESS_EVERY events."""
        return verify(
            ChainedRow(
                row.id,
                str(row.originator_id),
                row.originator_version,
                row.topic,
                bytes(row.state),
                str(row.event_id) if row.event_id is not None else None,
                row.hash,
            )
            for row in _reporting(self._chunked(0), progress)
        )

    def _columns(self) -> Select[Any]:
        c = self.events.c
        event_id = cast(c.event_id, String).label("event_id")  # text: skips the driver's UUID parsing
        return select(c.id, c.originator_id, c.originator_version, c.topic, c.state, event_id, c.hash)

    def _rows(self, after: int, limit: int) -> list[Row[Any]]:
        c = self.events.c
        query = self._columns().where(c.id > after).order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def _chunked(self, after: int) -> Iterator[Row[Any]]:
        while True:
            rows = self._rows(after, CHUNK)
            yield from rows
            if len(rows) < CHUNK:
                return
            after = rows[-1].id

    def _audited(self, row: Row[Any], sealed: bool = False) -> AuditedEvent:
        stored = StoredEvent(row.originator_id, row.originator_version, row.topic, bytes(row.state))
        mapper = self.event_store.mapper
        fact = mapper.to_sealed_domain_event(stored) if sealed else mapper.to_domain_event(stored)
        assert isinstance(fact, Fact)
        return AuditedEvent(row.id, row.hash, fact)


def _reporting(rows: Iterator[Row[Any]], progress: Callable[[int], None] | None) -> Iterator[Row[Any]]:
    for n, row in enumerate(rows, start=1):
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(row.id)
        yield row
