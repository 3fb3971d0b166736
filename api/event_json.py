"""Stored events and entity states as JSON for auditors (the API and the command line)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.audit import AuditedEvent
from domain.envelope import format_timestamp


def present_event(audited: AuditedEvent) -> dict[str, Any]:
    fact = audited.fact
    return {
        "position": audited.position,
        "stream_id": str(fact.originator_id),
        "version": fact.originator_version,
        "type": fact.type_name(),
        "schema_version": fact.schema_version(),
        "occurred_at": format_timestamp(fact.occurred_at),
        "recorded_at": format_timestamp(fact.timestamp),
        "user_id": fact.user_id,
        "context": jsonable(fact.context),
        "data": jsonable(fact.data),
        "event_id": fact.event_id,
        "hash": audited.hash,
    }


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact), times as RFC 3339, ids as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
