"""POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen: Segment's HTTP Tracking API
(api.md "Segment-compatible ingestion"), translated by api.segment into catalogue envelopes and
recorded atomically per call, with `messageId` as the idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel

from api.declared import declare
from api.errors import ApiError
from api.metrics import count_appended
from api.segment.messages import KINDS
from api.segment.request import MAX_BYTES, message_body, write_key
from api.segment.translate import InvalidMessages, Translation, translate
from domain.errors import BatchRejected

MAX_ITEMS = 2500
"""Segment's own limits are 500 KB a batch and 32 KB a message; these (and MAX_BYTES) are larger."""

blueprint = Blueprint("segment", __name__)

ID = {"type": ["string", "integer"]}
MESSAGE_PROPERTIES: dict[str, Any] = {
    "userId": ID,
    "anonymousId": ID,
    "messageId": ID,
    "timestamp": {"type": "string", "description": "RFC 3339 with offset: when it happened"},
    "originalTimestamp": {"type": "string"},
    "sentAt": {"type": "string", "description": "the sender's clock when sending"},
    "context": {"type": "object"},
    "properties": {"type": "object"},
    "traits": {"type": "object"},
    "event": {"type": "string", "description": "track: what the user did"},
    "name": {"type": "string"},
    "category": {"type": "string"},
    "writeKey": {"type": "string"},
}


def _message(kind: str | None) -> dict[str, Any]:
    type_ = {"enum": list(KINDS)} if kind is None else {"enum": [kind]}
    required = ["type"] if kind is None else []
    return {
        "type": "object",
        "required": required,
        "properties": {"type": type_, **MESSAGE_PROPERTIES},
    }


BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _message(None)},
        "context": {"type": "object", "description": "merged into each message's context"},
        "sentAt": {"type": "string"},
        "writeKey": {"type": "string"},
    },
}
RULES = {
    "userId": "userId or anonymousId is required; at most 128 characters",
    "timestamp": "an RFC 3339 timestamp with offset",
    "originalTimestamp": "an RFC 3339 timestamp with offset",
    "sentAt": "an RFC 3339 timestamp with offset",
    "event": "track: required, 1 to 200 characters",
    "name": "page and screen: `Viewed {category} {name} Page` is at most 200 characters",
    "properties": "as the catalogue type the event maps to takes them (the README's mapping table)",
    "properties.order_id": "required for Order Completed, Refunded, Cancelled",
    "properties.total": "Order Completed and Refunded: total, revenue or priced products are required",
    "properties.revenue": "a decimal >= 0 with at most 4 places (a refund's > 0)",
    "properties.products": "a decimal >= 0 with at most 4 places",
    "properties.products.price": "a decimal >= 0 with at most 4 places",
    "properties.products.quantity": "an integer > 0",
    "properties.products.sku": "1 to 128 characters",
    "properties.currency": "an ISO 4217 code",
    "properties.coupon_id": "Coupon Applied with an order_id: required",
    "properties.reason": "1 to 512 characters",
    "traits": "an object",
}


class Accepted(BaseModel):
    success: Literal[True] = True
    appended: int
    duplicates: int
    last_position: int | None


def _declare(path: str, kind: str | None) -> Any:
    many = "a batch of 1 to 2,500 messages" if kind is None else f"one {kind} message"
    return declare(
        blueprint,
        "POST",
        path,
        summary=f"Segment-compatible: {many} (at most {MAX_BYTES // 2**20} MB), recorded atomically",
        role="producer",
        result=Accepted,
        errors=(400, 409, 413, 422),
        body=BATCH if kind is None else _message(kind),
        body_rules=RULES,
        key_source=write_key,
    )


@_declare("/v1/batch", None)
def batch() -> Accepted:
    body = message_body()
    messages = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            422,
            "validation_failed",
            "expected an object with a 'batch' array of messages",
            [{"index": None, "field": "batch", "message": "required array of 1 or more messages"}],
        )
    if len(messages) > MAX_ITEMS:
        raise ApiError(413, "batch_too_large", f"at most {MAX_ITEMS} messages a batch, got {len(messages)}")
    return _record(messages, body)


@_declare("/v1/track", "track")
def track() -> Accepted:
    return _single("track")


@_declare("/v1/identify", "identify")
def identify() -> Accepted:
    return _single("identify")


@_declare("/v1/page", "page")
def page() -> Accepted:
    return _single("page")


@_declare("/v1/screen", "screen")
def screen() -> Accepted:
    return _single("screen")


def _single(kind: str) -> Accepted:
    body = message_body()
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "validation_failed",
            "expected a message object",
            [{"index": None, "field": "", "message": "object"}],
        )
    if body.get("type", kind) != kind:
        message = f"must be {kind} (or left out) on /v1/{kind}"
        raise ApiError(
            422, "validation_failed", f"type: {message}", [{"index": 0, "field": "type", "message": message}]
        )
    return _record([{**body, "type": kind}], {})


def _record(messages: list[Any], body: dict[str, Any]) -> Accepted:
    context = current_app.config["COHORTLINE"]
    received_at = datetime.now(UTC)
    try:
        translation = translate(
            messages, received_at=received_at, mapping=context.segment_mapping, batch=body
        )
    except InvalidMessages as invalid:
        raise ApiError(
            422, "validation_failed", "the batch has invalid messages; nothing was appended", invalid.details
        ) from None
    try:
        recorded = context.event_store.record(translation.envelopes, idempotency="key")
    except BatchRejected as rejected:
        raise ApiError(
            409,
            "conflict",
            "events break the rules of their streams; nothing was appended",
            _conflicts(rejected, translation),
        ) from None
    count_appended("segment", recorded.appended, recorded.duplicates)
    return Accepted(
        success=True,
        appended=recorded.appended,
        duplicates=recorded.duplicates,
        last_position=recorded.last_position,
    )


def _conflicts(rejected: BatchRejected, translation: Translation) -> list[dict[str, Any]]:
    """Each conflict by the index of the message whose event broke a rule."""
    return [
        {"index": translation.origins[c.index], "code": c.code, "message": c.message}
        for c in rejected.conflicts
    ]
