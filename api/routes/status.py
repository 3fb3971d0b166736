"""GET /v1/status: the log's head and each projection's lag, state and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import Connection

from api.auth import require
from projections.dead_letters import summary
from projections.halts import Halt, halts_of
from projections.schema import rfc3339
from projections.tracking import progress

blueprint = Blueprint("status", __name__)


@blueprint.get("/v1/status")
@require("reader")
def status() -> Response:
    context = current_app.config["COHORTLINE"]
    head = context.event_store.recorder.max_notification_id() or 0
    projections = []
    with context.read_engine.connect() as conn:
        for name in context.projections:
            current = progress(conn, name, context.kafka_partitions)
            projections.append(
                {
                    "name": name,
                    "position": current.position,
                    "lag_events": max(head - current.position, 0),
                    "lag_seconds": _lag_seconds(context.event_store, current.position, head),
                    "watermark": rfc3339(current.watermark),
                    **_health(conn, name),
                }
            )
    return jsonify({"head": head, "projections": projections, "backends": dict(context.backends)})


def _health(conn: Connection, name: str) -> dict[str, Any]:
    """Whether the projection runs or halted (where, why, since when), and what it dead-lettered."""
    halts = [_present_halt(h) for h in halts_of(conn, name)]
    parked = summary(conn, name)
    return {
        "state": "stopped" if halts else "running",
        "halt": halts[0] if halts else None,
        "halts": halts,
        "dead_letters": {
            "count": parked.count,
            "oldest_failed_at": rfc3339(parked.oldest_failed_at),
            "by_kind": parked.by_kind,
        },
    }


def _present_halt(halt: Halt) -> dict[str, Any]:
    return {
        "partition": halt.partition,
        "position": halt.position,
        "error": halt.error,
        "since": rfc3339(halt.since),
    }


def _lag_seconds(event_store: object, position: int, head: int) -> float:
    """How long ago the oldest event not yet applied was recorded (0 when caught up)."""
    if position >= head:
        return 0.0
    notifications = event_store.recorder.select_notifications(
        start=position, limit=1, inclusive_of_start=False
    )  # type: ignore[attr-defined]
    if not notifications:
        return 0.0
    recorded: datetime = event_store.mapper.to_domain_event(notifications[0]).timestamp  # type: ignore[attr-defined]
    return round(max((datetime.now(UTC) - recorded).total_seconds(), 0.0), 3)
