"""`as_of` and `watermark` on every analytics answer, and `min_position` / `wait_ms` waiting."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app

from api.errors import ApiError
from domain.envelope import format_timestamp
from projections.tracking import Progress, progress

MAX_WAIT_MS = 10_000
POLL_S = 0.02


def read_models_progress() -> Progress:
    """The least advanced of the projections: every answer reflects at least this position."""
    context = current_app.config["COHORTLINE"]
    with context.read_engine.connect() as conn:
        found = [progress(conn, name, context.kafka_partitions) for name in context.projections]
    position = min((p.position for p in found), default=0)
    watermarks = [p.watermark for p in found if p.watermark is not None]
    version = sum(p.version for p in found)
    return Progress(position, max(watermarks) if watermarks else None, version)


class NotYet(ApiError):
    def __init__(self, current: Progress, wanted: int):
        super().__init__(202, "not_yet", "the read models have not reached min_position")
        self.body = {"as_of": current.position, "min_position": wanted}


def wait_for_position(wanted: int | None, wait_ms: int) -> Progress:
    """Wait up to `wait_ms` for the read models to reach position `wanted`; raise NotYet (202) when
    they lag behind."""
    current = read_models_progress()
    if wanted is None:
        return current
    deadline = time.monotonic() + wait_ms / 1000
    while current.position < wanted and time.monotonic() < deadline:
        time.sleep(POLL_S)
        current = read_models_progress()
    if current.position < wanted:
        raise NotYet(current, wanted)
    return current


def stamped(body: dict[str, Any], current: Progress) -> dict[str, Any]:
    return {**body, "as_of": current.position, "watermark": format_timestamp(current.watermark)}
