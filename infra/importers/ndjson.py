"""Newline-delimited JSON: one object a line, either our envelope (it has `occurred_at`, events.md)
or a Segment message (`type` track, identify, page or screen, and no `occurred_at`), which
api.segment.translate maps onto the catalogue as POST /v1/batch does (with no clock of arrival:
each message's own `receivedAt` is used when it has one).

Segment messages are recorded with Segment's messageId semantics (an event id seen before is a
duplicate whatever its content), and a messageId repeated in the file is sent once; a batch never
mixes the two kinds. Blank lines are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from api.segment.mapping import DEFAULT_MAPPING, SegmentMapping
from api.segment.translate import InvalidMessages, translate
from infra.importers.source import BadLine, Batch, Event, checked, open_text

SEGMENT_TYPES = frozenset({"track", "identify", "page", "screen"})


def kind_of(line: int, value: object) -> str:
    """ "envelope" or "segment"; BadLine for anything else."""
    if not isinstance(value, dict):
        raise BadLine(line, "", "expected a JSON object")
    if "occurred_at" in value:
        return "envelope"
    if value.get("type") in SEGMENT_TYPES:
        return "segment"
    raise BadLine(
        line,
        "occurred_at",
        "required: an event needs occurred_at (or, as a Segment message, type track, identify, page or screen)",
    )


class Ndjson:
    """An NDJSON file (optionally gzipped), its lines counted when opened."""

    unit = "lines"

    def __init__(self, path: Path, mapping: SegmentMapping | None = None):
        self.path = path
        self.name = path.name
        self.mapping = mapping or DEFAULT_MAPPING
        with open_text(path) as handle:
            self.total = sum(1 for _ in handle)

    def batches(self, size: int) -> Iterator[Batch]:
        """Per `size` lines, every batch of them once all are mapped and valid: a bad line stops the
        import before anything of its lines is written."""
        sent: set[str] = set()
        with open_text(self.path) as handle:
            numbered = enumerate(handle, start=1)
            while chunk := list(islice(numbered, size)):
                yield from self._chunk(chunk, size, sent)

    def _chunk(self, chunk: list[tuple[int, str]], size: int, sent: set[str]) -> list[Batch]:
        parsed: list[tuple[str, int, Any]] = []
        for line, text in chunk:
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError as e:
                raise BadLine(line, "", f"not valid JSON: {e}") from None
            parsed.append((kind_of(line, value), line, value))
        batches: list[Batch] = []
        for kind, run_iter in groupby(parsed, key=lambda p: p[0]):
            run = [(line, value) for _, line, value in run_iter]
            if kind == "envelope":
                events, skipped, idempotency = [checked(line, value) for line, value in run], 0, "content"
            else:
                (events, skipped), idempotency = self._translated(run, sent), "key"
            slices = [events[i : i + size] for i in range(0, len(events), size)] or [[]]
            batches += [Batch(s, 0, idempotency) for s in slices[:-1]]  # type: ignore[arg-type]
            batches.append(Batch(slices[-1], 0, idempotency, skipped))  # type: ignore[arg-type]
        last = batches.pop() if batches else Batch([], 0)
        return [*batches, replace(last, read=len(chunk))]  # the chunk's lines counted once, at its end

    def _translated(self, run: list[tuple[int, Any]], sent: set[str]) -> tuple[list[Event], int]:
        """The run's Segment messages as events, leaving out an event id already sent in this run."""
        messages = [value for _, value in run]
        try:
            translation = translate(messages, received_at=None, mapping=self.mapping)
        except InvalidMessages as invalid:
            detail = invalid.details[0] if invalid.details else {}
            index = detail.get("index")
            line = run[index][0] if isinstance(index, int) and 0 <= index < len(run) else run[0][0]
            raise BadLine(line, str(detail.get("field", "")), str(detail.get("message", invalid))) from None
        events: list[Event] = []
        skipped = 0
        for envelope, origin in zip(translation.envelopes, translation.origins, strict=True):
            if envelope.event_id in sent:
                skipped += 1
                continue
            sent.add(envelope.event_id)
            events.append(Event(run[origin][0], envelope))
        return events, skipped
