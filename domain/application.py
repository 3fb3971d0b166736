"""The application service that records facts: load the streams a batch touches, check every
fact against its stream's rules, and save the whole batch in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.envelope import Envelope
from domain.errors import BatchRejected, DomainConflict, IndexedConflict
from domain.events import Fact
from domain.model import STREAM_CLASSES, StreamAggregate, stream_id

APPEND_ATTEMPTS = 8
BLANK_CREATED_ON = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Recorded:
    appended: int
    duplicates: int
    first_position: int | None
    last_position: int | None


class Cohortline(Application[UUID]):
    """Records catalogue facts in their streams; one instance serves many threads."""

    name = "cohortline"

    def record(self, envelopes: Sequence[Envelope]) -> Recorded:
        """Append every fact of the batch, or none (BatchRejected lists each broken rule).

        A concurrent writer to the same stream makes the save fail on the stream's version index;
        the batch is then checked again against the new state and retried."""
        for attempt in range(APPEND_ATTEMPTS):
            aggregates = self._decide(envelopes)
            try:
                recordings = self.save(*aggregates.values())
            except IntegrityError:
                if attempt == APPEND_ATTEMPTS - 1:
                    raise
                continue
            positions = [r.notification.id for r in recordings]
            return Recorded(
                appended=len(positions),
                duplicates=0,
                first_position=min(positions, default=None),
                last_position=max(positions, default=None),
            )
        raise AssertionError("unreachable")

    def _decide(self, envelopes: Sequence[Envelope]) -> dict[UUID, StreamAggregate]:
        aggregates: dict[UUID, StreamAggregate] = {}
        conflicts: list[IndexedConflict] = []
        for index, envelope in enumerate(envelopes):
            kind = envelope.spec.stream
            key = stream_id(kind, envelope.stream_key)
            aggregate = aggregates.get(key) or self.load(kind, key)
            try:
                aggregate.record(envelope)
            except DomainConflict as conflict:
                conflicts.append(IndexedConflict(index, conflict.code, conflict.message))
            aggregates[key] = aggregate
        if conflicts:
            raise BatchRejected(conflicts)
        return aggregates

    def load(self, kind: str, key: UUID, version: int | None = None) -> StreamAggregate:
        """The stream's aggregate (at `version` when given), blank when it has no events yet."""
        try:
            aggregate = self.repository.get(key, version=version)
        except AggregateNotFoundError:
            return STREAM_CLASSES[kind](key, BLANK_CREATED_ON)
        assert isinstance(aggregate, StreamAggregate)
        return aggregate

    def stream_events(self, kind: str, key: str) -> list[Fact]:
        """Every fact of one stream, in order, upcast to the current schema."""
        events: list[Any] = list(self.events.get(stream_id(kind, key)))
        return events
