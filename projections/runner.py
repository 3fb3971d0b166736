"""Applies deliveries of events to one projection: the read-model writes, the search documents and
the tracked positions commit together, so a redelivered event changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.exc import DBAPIError

from domain.catalogue import SYSTEM_TYPES
from projections.records import EventRecord
from projections.schema import metadata
from projections.sql import upsert
from projections.tracking import advance, lock_positions

log = logging.getLogger(__name__)

dead_letters = Table(
    "projection_dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("projection", String(32), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("kafka_offset", BigInteger),
    Column("event_id", String(64)),
    Column("reason", Text, nullable=False),
    Column("payload", Text),
    Column("failed_at", DateTime(), nullable=False),
    UniqueConstraint("projection", "partition", "kafka_offset", "position", name="uq_dead_letter_source"),
)


@dataclass(frozen=True)
class Delivery:
    """One message from a source partition: an event, or a watermark (`event` None) saying that
    every event at or below `position` was delivered before it on this partition, or (`error`) what
    could not be read, at its position or at 0 when even that was unreadable."""

    partition: int
    position: int
    offset: int | None = None
    event: EventRecord | None = None
    payload: str | None = None
    error: str | None = None


class Projection(Protocol):
    name: str
    tables: tuple[Table, ...]

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> Mapping[str, Mapping[str, Any]]:
        """Apply new events; returns the user rows they changed, as they are now."""


class SearchSink(Protocol):
    def index_rows(self, rows: Iterable[Mapping[str, Any]]) -> None: ...


class TransientError(Exception):
    """A backend is unavailable: the batch is retried later, not dead-lettered."""


class ProjectionRunner:
    def __init__(self, engine: Engine, projection: Projection, search: SearchSink | None = None):
        self.engine = engine
        self.projection = projection
        self.search = search

    @property
    def name(self) -> str:
        return self.projection.name

    def process(self, deliveries: Sequence[Delivery]) -> int:
        """Apply a batch in one transaction; returns how many events were new. When the batch fails
        for a reason other than an unavailable backend, each event is tried alone and the ones that
        still fail go to the dead-letter table, so the stream moves on."""
        if not deliveries:
            return 0
        try:
            return self._apply(deliveries)
        except TransientError:
            raise
        except DBAPIError as e:
            if e.connection_invalidated or _is_operational(e):
                raise TransientError(str(e)) from e
            return self._apply_one_by_one(deliveries)
        except Exception:
            log.exception("projection %s: batch failed; applying its events one by one", self.name)
            return self._apply_one_by_one(deliveries)

    def _apply(self, deliveries: Sequence[Delivery]) -> int:
        with self.engine.begin() as conn:
            tracked = lock_positions(conn, self.name, {d.partition for d in deliveries})
            fresh = [d for d in deliveries if d.position > tracked[d.partition]]
            bad = [
                d for d in deliveries if d.error and (d.position == 0 or d.position > tracked[d.partition])
            ]
            if bad:
                self._dead_letter(conn, bad)
            events = [d.event for d in fresh if d.event is not None]
            changed = self.projection.apply(conn, events) if events else {}
            if changed and self.search is not None:
                self.search.index_rows(changed.values())
            watermark = max((e.occurred_at for e in events if e.type not in SYSTEM_TYPES), default=None)
            advance(conn, self.name, _new_positions(tracked, deliveries), watermark)
        return len(events)

    def _apply_one_by_one(self, deliveries: Sequence[Delivery]) -> int:
        applied = 0
        for delivery in deliveries:
            try:
                applied += self._apply([delivery])
            except TransientError:
                raise
            except Exception as e:  # a poison message: park it with its reason and move on
                log.exception("projection %s: dead-lettering position %s", self.name, delivery.position)
                failed = Delivery(
                    delivery.partition,
                    delivery.position,
                    delivery.offset,
                    None,
                    delivery.payload or (delivery.event.to_json().decode() if delivery.event else None),
                    f"{type(e).__name__}: {e}",
                )
                self._apply([failed])
        return applied

    def _dead_letter(self, conn: Connection, failed: Sequence[Delivery]) -> None:
        """Park what failed, once per source message and position (Kafka may redeliver it)."""
        conn.execute(
            upsert(conn, dead_letters).on_conflict_do_nothing(),
            [
                {
                    "projection": self.name,
                    "partition": d.partition,
                    "position": d.position,
                    "kafka_offset": d.offset,
                    "event_id": None,
                    "reason": _text(d.error),
                    "payload": _text(d.payload),
                    "failed_at": datetime.now(UTC).replace(tzinfo=None),
                }
                for d in failed
            ],
        )


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; keep them visible instead."""
    return value.replace("\x00", "\\x00") if value else value


def _new_positions(
    tracked: dict[int, int], deliveries: Sequence[Delivery]
) -> dict[int, tuple[int, int | None]]:
    latest: dict[int, tuple[int, int | None]] = {}
    for d in deliveries:
        position, offset = latest.get(d.partition, (tracked[d.partition], None))
        latest[d.partition] = (max(position, d.position), d.offset if d.offset is not None else offset)
    return latest


def _is_operational(error: DBAPIError) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, (OperationalError, InterfaceError))
