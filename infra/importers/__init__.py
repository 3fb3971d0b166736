"""`cohortline import KIND PATH`: history from files mapped onto the catalogue and recorded in batches.

Kinds: `online-retail` (UCI Online Retail CSV), `cdnow` (CDNOW master CSV), `ndjson` (our envelopes
or Segment messages, one a line); each may be gzipped. Event ids are derived from the data, so an
import run again appends only what is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from api.segment.mapping import SegmentMapping
from infra.importers.source import BadLine, ImportFailed, Source

KINDS = ("online-retail", "cdnow", "ndjson")

__all__ = ["KINDS", "BadLine", "ImportFailed", "Source", "opener"]


def opener(kind: str, path: Path, segment_mapping: SegmentMapping | None = None) -> Callable[[], Source]:
    """What reads and counts the file of this kind when called."""
    if kind == "online-retail":
        from infra.importers.online_retail import OnlineRetail

        return lambda: OnlineRetail(path)
    if kind == "cdnow":
        from infra.importers.cdnow import Cdnow

        return lambda: Cdnow(path)
    if kind == "ndjson":
        from infra.importers.ndjson import Ndjson

        return lambda: Ndjson(path, segment_mapping)
    raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
