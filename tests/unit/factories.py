"""Raw envelopes for tests."""

from __future__ import annotations

from typing import Any

from domain.envelope import Envelope, parse_envelope


def raw(
    type_: str, user_id: str | None = "u1", at: str = "2011-01-04T10:00:00Z", **data: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": type_, "occurred_at": at, "data": data}
    if user_id is not None:
        event["user_id"] = user_id
    return event


def envelope(
    type_: str, user_id: str | None = "u1", at: str = "2011-01-04T10:00:00Z", **data: Any
) -> Envelope:
    return parse_envelope(raw(type_, user_id, at, **data))
