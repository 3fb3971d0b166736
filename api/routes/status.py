"""GET /v1/status: the log's head and each projection's lag."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify

from api.auth import require
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
                }
            )
    return jsonify({"head": head, "projections": projections, "backends": dict(context.backends)})


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
