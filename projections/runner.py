"""Applies deliveries of events to one projection: the read-model writes, the search documents and
the tracked positions commit together, so a redelivered event changes nothing.

What fails is handled by its cause (projections.failures): an unavailable backend is raised as
TransientError for the caller to retry; an unreadable message, an invalid event or a rejected
document is dead-lettered (projections.dead_letters) and the stream moves on; any other error is a
bug in Cohortline's own code and halts the projection at the event (projections.halts), after the
events before it in the batch are applied."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

from sqlalchemy import Connection, DateTime, Engine, Table, literal
from sqlalchemy.exc import DBAPIError

from domain.catalogue import SYSTEM_TYPES
from projections.dead_letters import UNREADABLE_MESSAGE, Failure, kind_of, park
from projections.failures import DocumentRejected, InvalidEvent, TransientError, database_unavailable
from projections.halts import Halt, ProjectionHalted, clear_passed, record_halt
from projections.metrics import batch_seconds, events_applied, transient_failures
from projections.records import EventRecord
from projections.schema import greatest, naive_utc
from projections.tracking import advance, lock_positions, tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message from a source partition: an event, or a watermark (`event` None) saying that
    every event at or below `position` was delivered before it on this partition, or (`error`) what
    could not be applied, of `kind`, at its position or at 0 when even that was unreadable."""

    partition: int
    position: int
    offset: int | None = None
    event: EventRecord | None = None
    payload: str | None = None
    error: str | None = None
    kind: str = UNREADABLE_MESSAGE


class Projection(Protocol):
    name: str
    tables: tuple[Table, ...]

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> Mapping[str, Mapping[str, Any]]:
        """Apply new events; returns the user rows they changed, as they are now, with their net
        revenue per currency (projections.search.attach_net_revenue). Raises InvalidEvent for an
        event it cannot hold."""


class SearchSink(Protocol):
    def index_rows(self, rows: Iterable[Mapping[str, Any]], version_type: str = "external") -> None:
        """Index the rows' documents; raises TransientError or DocumentRejected."""


class ProjectionRunner:
    def __init__(self, engine: Engine, projection: Projection, search: SearchSink | None = None):
        self.engine = engine
        self.projection = projection
        self.search = search
        self.halt: Halt | None = None
        """Set when an unexpected error stopped this runner; it then applies nothing more."""

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def halted(self) -> bool:
        return self.halt is not None

    def process(self, deliveries: Sequence[Delivery]) -> int:
        """Apply a batch in one transaction; returns how many events were new. When the batch fails
        for a reason other than an unavailable backend, its events are tried one by one: those the
        projection rejects are dead-lettered, and an unexpected error halts the projection at its
        event (ProjectionHalted)."""
        if self.halt is not None:
            raise ProjectionHalted(self.halt)
        if not deliveries:
            return 0
        with batch_seconds.labels(self.name).time():
            try:
                applied = self._process(deliveries)
            except TransientError:
                transient_failures.labels(self.name).inc()
                raise
        events_applied.labels(self.name).inc(applied)
        return applied

    def _process(self, deliveries: Sequence[Delivery]) -> int:
        try:
            return self._attempt(deliveries)
        except TransientError:
            raise
        except Exception:
            log.warning(
                "projection %s: batch failed; applying its events one by one", self.name, exc_info=True
            )
            return self._apply_one_by_one(deliveries)

    def apply_again(self, conn: Connection, partition: int, events: Sequence[EventRecord]) -> None:
        """Inside the caller's transaction, apply events that the tracked position of `partition`
        has already passed (a retried dead letter): the position stays, the watermark may rise."""
        changed = self.projection.apply(conn, events)
        if changed and self.search is not None:
            # the documents' versions may already stand at the user's last position
            self.search.index_rows(changed.values(), version_type="external_gte")
        watermark = _watermark(events)
        if watermark is not None:
            c = tracking.c
            conn.execute(
                tracking.update()
                .where(c.projection == self.name, c.partition == partition)
                .values(watermark=greatest(c.watermark, literal(naive_utc(watermark), DateTime())))
            )

    def _attempt(self, deliveries: Sequence[Delivery]) -> int:
        """`_apply`, telling an unavailable database apart as TransientError."""
        try:
            return self._apply(deliveries)
        except DBAPIError as e:
            if database_unavailable(e):
                raise TransientError(str(e)) from e
            raise

    def _apply(self, deliveries: Sequence[Delivery]) -> int:
        with self.engine.begin() as conn:
            tracked = lock_positions(conn, self.name, {d.partition for d in deliveries})
            fresh = [d for d in deliveries if d.position > tracked[d.partition]]
            bad = [
                d for d in deliveries if d.error and (d.position == 0 or d.position > tracked[d.partition])
            ]
            if bad:
                park(conn, self.name, [_failure(d) for d in bad])
            events = [d.event for d in fresh if d.event is not None]
            changed = self.projection.apply(conn, events) if events else {}
            if changed and self.search is not None:
                self.search.index_rows(changed.values())
            positions = _new_positions(tracked, deliveries)
            advance(conn, self.name, positions, _watermark(events))
            clear_passed(conn, self.name, {p: position for p, (position, _) in positions.items()})
        return len(events)

    def _apply_one_by_one(self, deliveries: Sequence[Delivery]) -> int:
        applied = 0
        for delivery in deliveries:
            try:
                applied += self._attempt([delivery])
            except TransientError:
                raise
            except (InvalidEvent, DocumentRejected) as e:
                self._dead_letter(delivery, e)
            except Exception as e:
                self._stop(delivery, e)
        return applied

    def _dead_letter(self, delivery: Delivery, error: InvalidEvent | DocumentRejected) -> None:
        log.warning("projection %s: dead-lettering position %s: %s", self.name, delivery.position, error)
        event = delivery.event
        failed = replace(
            delivery,
            event=None,
            payload=delivery.payload or (event.to_json().decode() if event else None),
            error=f"{type(error).__name__}: {error}",
            kind=kind_of(error) or UNREADABLE_MESSAGE,
        )
        try:
            self._attempt([failed])
        except TransientError:
            raise
        except Exception as e:
            self._stop(delivery, e)

    def _stop(self, delivery: Delivery, error: Exception) -> NoReturn:
        """Halt at `delivery`: nothing after it is applied until the process restarts."""
        log.error(
            "projection %s: HALTED at partition %s, position %s, by an unexpected error; it applies "
            "nothing more until restarted",
            self.name,
            delivery.partition,
            delivery.position,
            exc_info=error,
        )
        halt = Halt(
            self.name, delivery.partition, delivery.position, f"{type(error).__name__}: {error}", _now()
        )
        self.halt = halt
        try:
            self.halt = record_halt(self.engine, halt)
        except Exception:
            log.exception("projection %s: the halt could not be recorded", self.name)
        raise ProjectionHalted(self.halt) from error


def _failure(delivery: Delivery) -> Failure:
    return Failure(
        delivery.partition,
        delivery.position,
        delivery.offset,
        delivery.kind,
        delivery.error or "",
        delivery.payload,
    )


def _watermark(events: Iterable[EventRecord]) -> datetime | None:
    return max((e.occurred_at for e in events if e.type not in SYSTEM_TYPES), default=None)


def _new_positions(
    tracked: dict[int, int], deliveries: Sequence[Delivery]
) -> dict[int, tuple[int, int | None]]:
    latest: dict[int, tuple[int, int | None]] = {}
    for d in deliveries:
        position, offset = latest.get(d.partition, (tracked[d.partition], None))
        latest[d.partition] = (max(position, d.position), d.offset if d.offset is not None else offset)
    return latest


def _now() -> datetime:
    return datetime.now(UTC)
