"""GET /v1/status: the log's head and each projection's lag, state and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.common import NoParameters, Rfc3339
from api.context import ApiContext
from api.declared import declare
from domain.envelope import format_timestamp
from projections.dead_letters import summary
from projections.halts import Halt, halts_of
from projections.tracking import progress

blueprint = Blueprint("status", __name__)


class HaltAt(BaseModel):
    """Where an unexpected error stopped the projection: it applies nothing more until its process
    restarts and applies this position."""

    partition: int = Field(description="source partition; -1 in process")
    position: int = Field(description="log position of the event it failed on")
    error: str
    since: Rfc3339


class DeadLetterCounts(BaseModel):
    unreadable_message: int
    invalid_event: int
    document_rejected: int


class DeadLetters(BaseModel):
    """What the projection parked to move on (`cohortline dead-letters list|retry`)."""

    count: int
    oldest_failed_at: Rfc3339 | None
    by_kind: DeadLetterCounts


class ProjectionStatus(BaseModel):
    name: str
    position: int = Field(description="every event at or below it is applied")
    lag_events: int
    lag_seconds: float
    watermark: Rfc3339 | None
    state: Literal["running", "stopped"]
    halt: HaltAt | None = Field(description="the oldest halt, when stopped")
    halts: list[HaltAt] = Field(description="one per halted source partition")
    dead_letters: DeadLetters


class Status(BaseModel):
    head: int = Field(description="the log's last position")
    projections: list[ProjectionStatus]
    backends: dict[str, str]


@declare(
    blueprint,
    "GET",
    "/v1/status",
    summary="The log's head and each projection's lag, state and dead letters",
    role="reader",
    query=NoParameters,
    result=Status,
)
def status(_: NoParameters) -> Status:
    return current_status(current_app.config["COHORTLINE"])


def current_status(context: ApiContext) -> Status:
    """The log's head and each projection's progress and health, as /v1/status and /metrics tell it."""
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
                    "watermark": format_timestamp(current.watermark),
                    **_health(conn, name),
                }
            )
    return Status.model_validate(
        {"head": head, "projections": projections, "backends": dict(context.backends)}
    )


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
            "oldest_failed_at": format_timestamp(parked.oldest_failed_at),
            "by_kind": parked.by_kind,
        },
    }


def _present_halt(halt: Halt) -> dict[str, Any]:
    return {
        "partition": halt.partition,
        "position": halt.position,
        "error": halt.error,
        "since": format_timestamp(halt.since),
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
