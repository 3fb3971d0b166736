"""POST /v1/events: append a batch of facts atomically."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, Field

from api.declared import declare
from api.errors import ApiError
from api.metrics import count_appended
from domain.catalogue import MONEY_PLACES
from domain.envelope import Envelope, InvalidEnvelope, parse_envelope
from domain.errors import BatchRejected

MAX_EVENTS = 1000
MAX_BYTES = 5 * 1024 * 1024

blueprint = Blueprint("events", __name__)


BATCH = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_EVENTS,
            "items": {"$ref": "#/components/schemas/Event"},
        }
    },
}


class Appended(BaseModel):
    appended: int
    duplicates: int = Field(description="events with an event_id already stored with the same content")
    first_position: int | None = Field(description="pass last_position as min_position to read your writes")
    last_position: int | None


@declare(
    blueprint,
    "POST",
    "/v1/events",
    summary=f"Append a batch of 1 to {MAX_EVENTS:,} events (at most 5 MB) atomically",
    role="producer",
    result=Appended,
    status=201,
    errors=(400, 409, 413, 422),
    body=BATCH,
    body_rules={
        field: f"a number has at most {MONEY_PLACES} decimal places; where it must be > 0, a string too"
        for field in ("data.amount", "data.value", "data.items.unit_price")
    },
)
def append() -> Appended:
    envelopes = parse_batch(read_json_body())
    context = current_app.config["COHORTLINE"]
    try:
        recorded = context.event_store.record(envelopes)
    except BatchRejected as rejected:
        details = [{"index": c.index, "code": c.code, "message": c.message} for c in rejected.conflicts]
        raise ApiError(
            409, "conflict", "events break the rules of their streams; nothing was appended", details
        ) from None
    count_appended("events", recorded.appended, recorded.duplicates)
    return Appended(
        appended=recorded.appended,
        duplicates=recorded.duplicates,
        first_position=recorded.first_position,
        last_position=recorded.last_position,
    )


def read_json_body() -> Any:
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise ApiError(413, "batch_too_large", f"the request body is larger than {MAX_BYTES} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BYTES:
        raise ApiError(413, "batch_too_large", f"the request body is larger than {MAX_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {e}") from None


def parse_batch(body: Any) -> list[Envelope]:
    """The batch's envelopes, or a 413 / 422 naming every bad event by index and field."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ApiError(
            422,
            "validation_failed",
            "expected an object with an 'events' array",
            [{"index": None, "field": "events", "message": "required array"}],
        )
    extra = sorted(set(body) - {"events"})
    raw_events = body["events"]
    if len(raw_events) > MAX_EVENTS:
        raise ApiError(
            413, "batch_too_large", f"at most {MAX_EVENTS} events per request, got {len(raw_events)}"
        )
    details: list[dict[str, Any]] = [{"index": None, "field": k, "message": "unknown field"} for k in extra]
    if not raw_events:
        details.append({"index": None, "field": "events", "message": "at least one event is required"})
    envelopes: list[Envelope] = []
    for index, raw in enumerate(raw_events):
        try:
            envelopes.append(parse_envelope(raw))
        except InvalidEnvelope as invalid:
            details += [{"index": index, "field": e.field, "message": e.message} for e in invalid.errors]
    if details:
        raise ApiError(
            422, "validation_failed", "the batch has invalid events; nothing was appended", details
        )
    return envelopes
