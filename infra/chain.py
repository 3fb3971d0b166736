"""Tamper evidence: every stored event carries a SHA-256 hash over its own stored content and the
hash of the event before it in log order, so changing, removing or reordering any stored event
breaks the chain from that position on.

The content hashed is what the store holds, byte for byte: position, stream id, stream version,
topic, event id and the serialised state (which holds personal data only encrypted, so destroying
a user's key changes no stored byte and the chain still verifies)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

GENESIS = "0" * 64
"""The hash before the first event."""


@dataclass(frozen=True)
class ChainedRow:
    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    event_id: str | None
    hash: str | None


@dataclass(frozen=True)
class UnreadableRow:
    """A stored row one of whose columns holds something no hash was ever computed over (a value of
    another type, or none at all)."""

    position: int
    reason: str


def chain_hash(
    previous: str,
    position: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
    event_id: str | None,
) -> str:
    head = f"{previous}|{position}|{originator_id}|{originator_version}|{topic}|{event_id or ''}|"
    return hashlib.sha256(head.encode() + state).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None


def verify(rows: Iterable[ChainedRow | UnreadableRow]) -> Verdict:
    """Walk the chain in log order; the first position that is unreadable, or whose stored hash
    differs from the one its content and predecessor give, is where it broke."""
    previous, count = GENESIS, 0
    for row in rows:
        if isinstance(row, UnreadableRow):
            return Verdict(False, count, previous, row.position, row.reason)
        if row.hash is None:
            return Verdict(False, count, previous, row.position, "the event carries no hash")
        expected = chain_hash(
            previous,
            row.position,
            row.originator_id,
            row.originator_version,
            row.topic,
            row.state,
            row.event_id,
        )
        if expected != row.hash:
            return Verdict(
                False,
                count,
                previous,
                row.position,
                "the stored hash does not match the event's content and the hash before it",
            )
        previous = row.hash
        count += 1
    return Verdict(True, count, previous)


def extend(previous: str, rows: Iterable[tuple[int, str, int, str, bytes, str | None]]) -> Iterator[str]:
    """The hashes of new rows (position, stream id, version, topic, state, event id) after
    `previous`, in order."""
    for position, originator_id, version, topic, state, event_id in rows:
        previous = chain_hash(previous, position, originator_id, version, topic, state, event_id)
        yield previous
