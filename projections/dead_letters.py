"""Dead letters: what a projection could not apply, parked with its reason so the stream moves on,
and their retry once the cause is fixed.

Kinds: `unreadable_message` (a message, or an event in it, that could not be decoded; position 0
when not even its position could be read), `invalid_event` (an event the projection cannot hold)
and `document_rejected` (the search index refused the event's document).

A retry applies the event exactly once: in one transaction it holds the partition's tracked
position (as the live consumer does), locks the dead letter's row, applies the event past the
tracked position (which stays where it is) and deletes the row; a concurrent retry then finds the
row gone. A retry that fails leaves the row with its new reason and one more retry counted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
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
    func,
    select,
    text,
)

from projections.failures import DocumentRejected, InvalidEvent, storable
from projections.records import EventRecord
from projections.schema import metadata
from projections.sql import upsert
from projections.tracking import lock_positions

log = logging.getLogger(__name__)

UNREADABLE_MESSAGE = "unreadable_message"
INVALID_EVENT = "invalid_event"
DOCUMENT_REJECTED = "document_rejected"
KINDS = (UNREADABLE_MESSAGE, INVALID_EVENT, DOCUMENT_REJECTED)

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
    Column("kind", String(24), nullable=False),
    Column("retries", Integer, nullable=False, server_default=text("0")),
    Column("last_retried_at", DateTime()),
    UniqueConstraint("projection", "partition", "kafka_offset", "position", name="uq_dead_letter_source"),
)


@dataclass(frozen=True)
class Failure:
    """What to park: where it came from, why, and what could be kept of it."""

    partition: int
    position: int
    offset: int | None
    kind: str
    reason: str
    payload: str | None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    projection: str
    partition: int
    position: int
    kafka_offset: int | None
    event_id: str | None
    kind: str
    reason: str
    payload: str | None
    failed_at: datetime
    retries: int
    last_retried_at: datetime | None


@dataclass(frozen=True)
class Summary:
    count: int
    oldest_failed_at: datetime | None
    by_kind: dict[str, int]


def kind_of(error: BaseException) -> str | None:
    """The dead-letter kind of an error, None when it is no reason to park an event."""
    if isinstance(error, InvalidEvent):
        return INVALID_EVENT
    if isinstance(error, DocumentRejected):
        return DOCUMENT_REJECTED
    return None


def park(conn: Connection, projection: str, failures: Sequence[Failure]) -> None:
    """Park what failed, once per source message and position (Kafka may redeliver it)."""
    failed_at = _now()
    conn.execute(
        upsert(conn, dead_letters).on_conflict_do_nothing(),
        [
            {
                "projection": projection,
                "partition": f.partition,
                "position": f.position,
                "kafka_offset": f.offset,
                "event_id": None,
                "kind": f.kind,
                "reason": storable(f.reason),
                "payload": storable(f.payload),
                "failed_at": failed_at,
            }
            for f in failures
        ],
    )


def listed(conn: Connection, projection: str | None = None, ids: Sequence[int] = ()) -> list[DeadLetter]:
    """The dead letters, oldest first: of one projection, or only those with these ids."""
    query = select(dead_letters).order_by(dead_letters.c.id)
    if projection is not None:
        query = query.where(dead_letters.c.projection == projection)
    if ids:
        query = query.where(dead_letters.c.id.in_(sorted(set(ids))))
    return [DeadLetter(**row) for row in conn.execute(query).mappings()]


def summary(conn: Connection, projection: str) -> Summary:
    c = dead_letters.c
    rows = conn.execute(
        select(c.kind, func.count(), func.min(c.failed_at)).where(c.projection == projection).group_by(c.kind)
    ).all()
    by_kind = dict.fromkeys(KINDS, 0) | {kind: count for kind, count, _ in rows}
    oldest = min((at for _, _, at in rows if at is not None), default=None)
    return Summary(sum(by_kind.values()), oldest, by_kind)


class Replayer(Protocol):
    """What a retry needs of a projection (projections.runner.ProjectionRunner)."""

    name: str

    def apply_again(self, conn: Connection, partition: int, events: Sequence[EventRecord]) -> None: ...


EventAt = Callable[[int], EventRecord]
"""The event at a log position, as projections read it; LookupError when there is none."""

Decode = Callable[[DeadLetter], list[EventRecord]]
"""The events of an unreadable message, decoded again from its payload; raises while it still cannot
be read."""


@dataclass(frozen=True)
class Retried:
    id: int
    projection: str | None
    outcome: str
    """`applied`; `failed` (the row stays, with `detail` as its reason); `gone` (retried already)."""
    detail: str | None = None


class DeadLetterRetry:
    def __init__(self, engine: Engine, runners: Sequence[Replayer], event_at: EventAt, decode: Decode):
        self.engine = engine
        self.runners: Mapping[str, Replayer] = {r.name: r for r in runners}
        self.event_at = event_at
        self.decode = decode

    def run(self, projection: str | None = None, ids: Sequence[int] = ()) -> list[Retried]:
        """Retry the dead letters of `projection` (default: all), or only those with these ids."""
        with self.engine.connect() as conn:
            letters = listed(conn, projection, ids)
        found = {letter.id for letter in letters}
        gone = [Retried(i, projection, "gone") for i in dict.fromkeys(ids) if i not in found]
        return [*(self.retry(letter) for letter in letters), *gone]

    def retry(self, letter: DeadLetter) -> Retried:
        runner = self.runners.get(letter.projection)
        if runner is None:
            return Retried(letter.id, letter.projection, "failed", f"no projection {letter.projection!r}")
        try:
            events = self._events(letter)
            with self.engine.begin() as conn:
                if not _claim(conn, letter):
                    return Retried(letter.id, letter.projection, "gone")
                runner.apply_again(conn, letter.partition, events)
                conn.execute(dead_letters.delete().where(dead_letters.c.id == letter.id))
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            log.warning("dead letter %s of %s failed again: %s", letter.id, letter.projection, reason)
            self._failed_again(letter, e, reason)
            return Retried(letter.id, letter.projection, "failed", reason)
        return Retried(letter.id, letter.projection, "applied")

    def _events(self, letter: DeadLetter) -> list[EventRecord]:
        if letter.position > 0:
            return [self.event_at(letter.position)]
        return self.decode(letter)

    def _failed_again(self, letter: DeadLetter, error: Exception, reason: str) -> None:
        values: dict[str, Any] = {
            "reason": storable(reason),
            "retries": dead_letters.c.retries + 1,
            "last_retried_at": _now(),
        }
        kind = kind_of(error)
        if kind is not None:
            values["kind"] = kind
        with self.engine.begin() as conn:
            conn.execute(dead_letters.update().where(dead_letters.c.id == letter.id).values(**values))


def _claim(conn: Connection, letter: DeadLetter) -> bool:
    """Hold the partition's tracked position, then lock the dead letter's row; False when a
    concurrent retry deleted it first."""
    lock_positions(conn, letter.projection, {letter.partition})
    query = select(dead_letters.c.id).where(dead_letters.c.id == letter.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first() is not None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
