"""The application service that records facts: check every fact of a batch against its stream's
rules and its event id against those already recorded, then save the whole batch in one
transaction."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.envelope import Envelope
from domain.errors import BatchRejected, DomainConflict, IndexedConflict
from domain.events import Fact
from domain.model import STREAM_CLASSES, StreamAggregate, stream_id

OPTIMISTIC_ATTEMPTS = 3
RETRY_PAUSE_S = 0.002
"""An optimistic retry waits up to 4 ms, then up to 8 ms."""
STREAM_CACHE_SIZE = 10_000
BLANK_CREATED_ON = datetime(1970, 1, 1, tzinfo=UTC)
Idempotency = Literal["content", "key"]
"""How an event id seen before is judged: `content` — a duplicate when the content is the same, a
conflict otherwise (the envelope's contract); `key` — always a duplicate, the first content kept
(a sender's idempotency key whose retries may carry a slightly different content, such as an event
time corrected again for the sender's clock)."""


class WriteSideStore(Protocol):
    """What recording needs beyond eventsourcing's recorder; infra implements it in SQL."""

    def events_after(self, versions: Mapping[UUID, int]) -> list[StoredEvent]:
        """The stored events of these streams above these versions, in stream order."""

    def seen_event_ids(self, ids: Collection[str]) -> dict[str, tuple[int, StoredEvent]]:
        """`event_id → (position, stored event)` of the ids already recorded.

        The recorder behind `events.put(..., event_ids=[...])` keeps each event's id unique, so a
        concurrent append of the same id fails with IntegrityError."""

    def appending(self) -> AbstractContextManager[None]:
        """A write transaction holding the store's append lock from its start, which the save of a
        batch inside it joins: no other batch is saved meanwhile, and reads made inside it see every
        event committed."""


@dataclass(frozen=True)
class Recorded:
    appended: int
    duplicates: int
    first_position: int | None
    last_position: int | None


def same_fact(fact: Fact, envelope: Envelope) -> bool:
    """Whether a stored fact and a new envelope with its event id carry the same content (amounts
    and times compared by value)."""
    return (
        fact.type_name() == envelope.type
        and fact.occurred_at == envelope.occurred_at
        and fact.user_id == envelope.user_id
        and fact.data == envelope.data
        and fact.context == envelope.context
    )


class Cohortline(Application[UUID]):
    """Records catalogue facts in their streams; one instance serves many threads."""

    name = "cohortline"

    def __init__(self, env: Mapping[str, str] | None = None):
        super().__init__(env)
        self.write_store: WriteSideStore | None = None
        self._streams: OrderedDict[UUID, StreamAggregate] = OrderedDict()
        self._streams_lock = threading.Lock()

    def attach(self, write_store: WriteSideStore) -> None:
        self.write_store = write_store

    def record(self, envelopes: Sequence[Envelope], *, idempotency: Idempotency = "content") -> Recorded:
        """Append every new fact of the batch, or none.

        An event id already recorded with the same content is a duplicate (not appended again);
        with other content it is a conflict, unless `idempotency` is `key`. Rule breaks and reused ids
        raise BatchRejected, listing each by index.

        The batch is checked before the append lock is taken, so checks run side by side. A writer
        that saved to the same streams or event ids in between makes the save fail on a unique
        index; the batch is then checked again after a short random pause. After
        OPTIMISTIC_ATTEMPTS such losses it is checked and saved under the lock, where no writer can
        overtake it: under any contention every batch is recorded or rejected, never given up on."""
        assert self.write_store is not None, "attach a WriteSideStore first"
        for attempt in range(1, OPTIMISTIC_ATTEMPTS + 1):
            try:
                return self._record_once(envelopes, idempotency)
            except IntegrityError:
                time.sleep(random.uniform(0, RETRY_PAUSE_S * 2**attempt))
        with self.write_store.appending():
            return self._record_once(envelopes, idempotency)

    def _record_once(self, envelopes: Sequence[Envelope], idempotency: Idempotency) -> Recorded:
        assert self.write_store is not None
        seen = self.write_store.seen_event_ids([e.event_id for e in envelopes])
        conflicts: list[IndexedConflict] = []
        fresh: list[int] = []
        first_index: dict[str, int] = {}
        duplicate_positions: list[int] = []
        for index, envelope in enumerate(envelopes):
            known = seen.get(envelope.event_id)
            earlier = first_index.get(envelope.event_id)
            if known is not None:
                position, stored = known
                if idempotency == "key" or same_fact(self._fact(stored), envelope):
                    duplicate_positions.append(position)
                else:
                    conflicts.append(_reused(index, envelope.event_id))
            elif earlier is not None:
                if idempotency == "content" and envelopes[earlier] != envelope:
                    conflicts.append(_reused(index, envelope.event_id))
            else:
                first_index[envelope.event_id] = index
                fresh.append(index)

        streams = {i: stream_id(envelopes[i].spec.stream, envelopes[i].stream_key) for i in fresh}
        aggregates = self._load_streams({key: envelopes[i].spec.stream for i, key in streams.items()})
        for index in fresh:
            try:
                aggregates[streams[index]].record(envelopes[index])
            except DomainConflict as conflict:
                conflicts.append(IndexedConflict(index, conflict.code, conflict.message))
        if conflicts:
            raise BatchRejected(sorted(conflicts, key=lambda c: c.index))

        changed = [a for a in aggregates.values() if a.pending_events]
        positions = self._save(changed)
        self._remember(changed)
        every = positions + duplicate_positions
        return Recorded(
            appended=len(positions),
            duplicates=len(envelopes) - len(positions),
            first_position=min(every, default=None),
            last_position=max(every, default=None),
        )

    def _save(self, aggregates: list[StreamAggregate]) -> list[int]:
        """Save the aggregates' new events, with their ids, in one transaction; returns positions."""
        if not aggregates:
            return []
        events: list[Fact] = [e for a in aggregates for e in a.collect_events()]  # type: ignore[misc]
        with self.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            recordings = self.events.put(events, session=session, event_ids=[e.event_id for e in events])
        return [r.notification.id for r in recordings]

    def _fact(self, stored: StoredEvent) -> Fact:
        fact = self.mapper.to_domain_event(stored)
        assert isinstance(fact, Fact)
        return fact

    def _load_streams(self, kinds: Mapping[UUID, str]) -> dict[UUID, StreamAggregate]:
        """Private copies of these streams, brought up to date with one query."""
        assert self.write_store is not None
        with self._streams_lock:
            cached = {k: self._streams.get(k) for k in kinds}
        aggregates: dict[UUID, StreamAggregate] = {
            k: a.clone() if a is not None else STREAM_CLASSES[kinds[k]](k, BLANK_CREATED_ON)
            for k, a in cached.items()
        }
        for stored in self.write_store.events_after({k: a.version for k, a in aggregates.items()}):
            fact = self._fact(stored)
            fact.mutate(aggregates[fact.originator_id])
        return aggregates

    def _remember(self, aggregates: list[StreamAggregate]) -> None:
        with self._streams_lock:
            for aggregate in aggregates:
                self._streams[aggregate.id] = aggregate
                self._streams.move_to_end(aggregate.id)
            while len(self._streams) > STREAM_CACHE_SIZE:
                self._streams.popitem(last=False)

    def stream_events(self, kind: str, key: str) -> list[Fact]:
        """Every fact of one stream, in order, upcast to the current schema."""
        events: list[Any] = list(self.events.get(stream_id(kind, key)))
        return events


def _reused(index: int, event_id: str) -> IndexedConflict:
    return IndexedConflict(
        index, "event_id_reused", f"event_id {event_id} was already used for an event with other content"
    )
