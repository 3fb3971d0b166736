"""What auditors read: stored facts with their place in the log and their tamper-evidence hash, and
an entity's state replayed to a point in its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.events import Fact
from domain.model import STREAM_CLASSES, StreamAggregate

STREAM_KINDS = tuple(STREAM_CLASSES)


@dataclass(frozen=True)
class AuditedEvent:
    position: int
    hash: str | None
    fact: Fact


def state_at(
    history: Sequence[AuditedEvent],
    *,
    as_of: datetime | None = None,
    version: int | None = None,
) -> StreamAggregate | None:
    """The entity after the events of its stream recorded at or before `as_of`, or up to `version`
    (the whole history when neither is given); None when it did not exist yet. `as_of` is the
    recorded time (what the store knew then), so the events it selects are a prefix of the stream."""
    aggregate = None
    for audited in history:
        fact = audited.fact
        if version is not None and fact.originator_version > version:
            break
        if as_of is not None and fact.timestamp > as_of:
            break
        aggregate = fact.mutate(aggregate)
    return aggregate
