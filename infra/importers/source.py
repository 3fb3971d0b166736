"""What every importer yields: validated events with the line of the file they came from, in batches."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from api.event_json import jsonable
from domain.application import Idempotency
from domain.envelope import Envelope, InvalidEnvelope, format_timestamp, parse_envelope


class ImportFailed(Exception):
    """An import stopped; the message says where and why."""


class BadLine(ImportFailed):
    """A line of the file that cannot become a valid event."""

    def __init__(self, line: int, field: str, message: str):
        super().__init__(f"line {line}: {field or 'the line'}: {message}")
        self.line = line
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Event:
    """A validated event and the line of the file it came from (1 is the file's first line)."""

    line: int
    envelope: Envelope
    raw: dict[str, Any] | None = None
    """The envelope as JSON, when the file gave it so (else `envelope_json` writes it)."""

    def as_json(self) -> dict[str, Any]:
        return self.raw if self.raw is not None else envelope_json(self.envelope)


@dataclass(frozen=True)
class Batch:
    """Events recorded together (all or none), and how much of the file they account for."""

    events: list[Event]
    read: int
    """Units of the source (events or lines) this batch consumed."""
    idempotency: Idempotency = "content"
    skipped: int = 0
    """Events left out before sending as repeats of one already sent in this run (counted as
    duplicates)."""


class Source(Protocol):
    """A file read and counted; `batches` maps and validates it batch by batch."""

    name: str
    unit: str
    """What `total` and `Batch.read` count: "events" or "lines"."""
    total: int

    def batches(self, size: int) -> Iterator[Batch]: ...


def open_text(path: Path) -> io.TextIOBase:
    """The file as text (UTF-8, universal newlines off for the csv module), gunzipped when it ends in .gz."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return path.open("r", encoding="utf-8", newline="")


def checked(line: int, raw: dict[str, Any]) -> Event:
    """`raw` validated as an envelope, or BadLine naming the line and the first bad field."""
    try:
        return Event(line, parse_envelope(raw), raw)
    except InvalidEnvelope as invalid:
        first = invalid.errors[0]
        more = f" (and {len(invalid.errors) - 1} more)" if len(invalid.errors) > 1 else ""
        raise BadLine(line, first.field, first.message + more) from None


def batched(lined: Iterable[tuple[int, dict[str, Any]]], size: int) -> Iterator[Batch]:
    """Mapped events, each with its line, validated and cut into batches of `size` events."""
    events: list[Event] = []
    for line, raw in lined:
        events.append(checked(line, raw))
        if len(events) == size:
            yield Batch(events, len(events))
            events = []
    if events:
        yield Batch(events, len(events))


def envelope_json(envelope: Envelope) -> dict[str, Any]:
    """A validated envelope as POST /v1/events takes it (amounts as decimal strings, times in RFC 3339)."""
    raw: dict[str, Any] = {
        "event_id": envelope.event_id,
        "type": envelope.type,
        "occurred_at": format_timestamp(envelope.occurred_at),
        "data": jsonable(envelope.data),
        "context": jsonable(envelope.context),
    }
    if envelope.user_id is not None:
        raw["user_id"] = envelope.user_id
    return raw
