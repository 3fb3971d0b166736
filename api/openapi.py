"""GET /v1/openapi.json: the OpenAPI 3.1 description of every route, built from the same catalogue
that validates events, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from domain.audit import STREAM_KINDS
from domain.catalogue import CONTEXT_FIELDS, TYPES, FieldSpec, TypeSpec
from projections.rfm import SEGMENT_NAMES

blueprint = Blueprint("openapi", __name__)

ERROR_CODES = {
    400: "invalid_json, invalid_parameter",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found, user_not_found, unknown_stream_kind, stream_not_found, not_yet_existing, "
    "projection_not_found",
    409: "conflict (details carry per-event codes such as order_not_placed, event_id_reused), "
    "rebuild_running, read_models_moving",
    413: "batch_too_large",
    422: "validation_failed",
}


@blueprint.get("/v1/openapi.json")
def openapi() -> Response:
    return jsonify(document())


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cohortline",
            "version": "1.0.0",
            "description": "Event-sourced retention and engagement analytics. Every error is "
            '{"error": {"code", "message", "details"}} with a stable code.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/events": {"post": _append()},
            "/v1/users/{user_id}": {"get": _user()},
            "/v1/users/search": {"get": _search()},
            "/v1/status": {"get": _status()},
            **_analytics_paths(),
            **_audit_paths(),
            **_admin_paths(),
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _error_schema(),
                "Event": {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in _sender_types()]},
                "Context": _object(CONTEXT_FIELDS),
                "UserState": _user_state_schema(),
                **{spec.name: _event_schema(spec) for spec in TYPES.values() if spec.accepted_from_senders},
            },
            "responses": {str(status): _error_response(status) for status in ERROR_CODES},
        },
    }


def _sender_types() -> list[str]:
    return [spec.name for spec in TYPES.values() if spec.accepted_from_senders]


def _append() -> dict[str, Any]:
    return {
        "summary": "Append a batch of 1 to 1,000 events (at most 5 MB) atomically (role: producer)",
        "requestBody": {
            "required": True,
            "content": _json(
                {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {"$ref": "#/components/schemas/Event"},
                        }
                    },
                }
            ),
        },
        "responses": {
            "201": {
                "description": "Appended; duplicates (same event_id, same content) were not appended again",
                "content": _json(
                    {
                        "type": "object",
                        "properties": {
                            "appended": {"type": "integer"},
                            "duplicates": {"type": "integer"},
                            "first_position": {"type": ["integer", "null"]},
                            "last_position": {"type": ["integer", "null"]},
                        },
                    }
                ),
            },
            **_errors(400, 401, 403, 409, 413, 422),
        },
    }


def _freshness_parameters() -> list[dict[str, Any]]:
    return [
        _query("min_position", {"type": "integer", "minimum": 0}, "wait until the read models reach it"),
        _query(
            "wait_ms", {"type": "integer", "minimum": 0, "maximum": 10000}, "how long to wait (default 0)"
        ),
    ]


def _stamped(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "allOf": [
            schema,
            {
                "type": "object",
                "properties": {
                    "as_of": {"type": "integer", "description": "log position the read models have applied"},
                    "watermark": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        ]
    }


def _not_yet() -> dict[str, Any]:
    return {
        "description": "The read models have not reached min_position within wait_ms",
        "content": _json(
            {
                "type": "object",
                "properties": {"as_of": {"type": "integer"}, "min_position": {"type": "integer"}},
            }
        ),
    }


def _user() -> dict[str, Any]:
    return {
        "summary": "A user's state (role: reader)",
        "parameters": [
            {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}},
            *_freshness_parameters(),
        ],
        "responses": {
            "200": {"description": "The user state", "content": _json(_stamped(_ref("UserState")))},
            "202": _not_yet(),
            **_errors(400, 401, 403, 404),
        },
    }


def _search() -> dict[str, Any]:
    return {
        "summary": "Search users, newest activity first (role: reader; Elasticsearch when configured)",
        "parameters": [
            _query("q", {"type": "string"}, "user id prefix"),
            _query("country", {"type": "string", "maxLength": 2}, "ISO 3166-1 alpha-2"),
            _query("min_orders", {"type": "integer", "minimum": 0}, "at least this many orders"),
            _query("last_active_before", {"type": "string", "format": "date-time"}, "last activity before"),
            _query(
                "lifecycle",
                {"enum": ["new", "active", "resurrected", "at_risk", "churned"]},
                "lifecycle state at the watermark",
            ),
            _query("segment", {"enum": list(SEGMENT_NAMES)}, "RFM segment at the watermark"),
            _query("size", {"type": "integer", "minimum": 1, "maximum": 100}, "page size (default 20)"),
            _query("after", {"type": "string"}, "the `next` cursor of the previous page"),
            *_freshness_parameters(),
        ],
        "responses": {
            "200": {
                "description": "A page of users",
                "content": _json(
                    _stamped(
                        {
                            "type": "object",
                            "properties": {
                                "users": {"type": "array", "items": _ref("UserState")},
                                "next": {"type": ["string", "null"]},
                            },
                        }
                    )
                ),
            },
            "202": _not_yet(),
            **_errors(400, 401, 403),
        },
    }


def _status() -> dict[str, Any]:
    halt = {
        "type": "object",
        "description": "Where an unexpected error stopped the projection: it applies nothing more "
        "until its process restarts and applies this position",
        "properties": {
            "partition": {"type": "integer", "description": "source partition; -1 in process"},
            "position": {"type": "integer", "description": "log position of the event it failed on"},
            "error": {"type": "string"},
            "since": {"type": "string", "format": "date-time"},
        },
    }
    kinds = ("unreadable_message", "invalid_event", "document_rejected")
    dead_letters = {
        "type": "object",
        "description": "What the projection parked to move on (`cohortline dead-letters list|retry`)",
        "properties": {
            "count": {"type": "integer"},
            "oldest_failed_at": {"type": ["string", "null"], "format": "date-time"},
            "by_kind": {
                "type": "object",
                "properties": {kind: {"type": "integer"} for kind in kinds},
                "required": list(kinds),
            },
        },
    }
    projection = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "position": {"type": "integer"},
            "lag_events": {"type": "integer"},
            "lag_seconds": {"type": "number"},
            "watermark": {"type": ["string", "null"], "format": "date-time"},
            "state": {"type": "string", "enum": ["running", "stopped"]},
            "halt": {"oneOf": [halt, {"type": "null"}], "description": "the oldest halt, when stopped"},
            "halts": {"type": "array", "items": halt, "description": "one per halted source partition"},
            "dead_letters": dead_letters,
        },
    }
    return {
        "summary": "The log's head and each projection's lag, state and dead letters (role: reader)",
        "responses": {
            "200": {
                "description": "Status",
                "content": _json(
                    {
                        "type": "object",
                        "properties": {
                            "head": {"type": "integer"},
                            "projections": {"type": "array", "items": projection},
                            "backends": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    }
                ),
            },
            **_errors(401, 403),
        },
    }


def _analytics_paths() -> dict[str, Any]:
    def enum(name: str, values: list[str], default: str, description: str) -> dict[str, Any]:
        return _query(name, {"enum": values, "default": default}, description)

    day = {"type": "string", "format": "date"}
    dates = [
        {**_query("from", day, "first day of the range (inclusive)"), "required": True},
        {**_query("to", day, "last day of the range (inclusive)"), "required": True},
    ]
    cohort_row = {
        "type": "object",
        "properties": {
            "cohort": {"type": "string"},
            "size": {"type": "integer"},
            "values": {"type": "array", "items": {"type": "integer"}},
            "rates": {"type": "array", "items": {"type": "number"}},
            "complete": {"type": "array", "items": {"type": "boolean"}},
            "breakdown_value": {"type": ["string", "null"]},
        },
    }
    period_series = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
    endpoints = {
        "/v1/retention/cohorts": (
            "Retention cohorts",
            [
                enum("granularity", ["day", "week", "month"], "month", "period length"),
                enum("cohort", ["first_seen", "signup", "first_order"], "first_seen", "cohort definition"),
                enum("return", ["active", "order"], "active", "what counts as a return"),
                enum("mode", ["on", "on_or_after"], "on", "N-period or unbounded retention"),
                _query(
                    "periods",
                    {"type": "integer", "minimum": 0},
                    "offsets 0..periods (default: to the range's end)",
                ),
                _query(
                    "breakdown",
                    {"enum": ["channel", "country"]},
                    "split cohorts by first-touch channel or country",
                ),
            ],
            {"type": "object", "properties": {"cohorts": {"type": "array", "items": cohort_row}}},
        ),
        "/v1/activity/active-users": (
            "Distinct active users per period",
            [
                enum("granularity", ["day", "week", "month"], "day", "period length"),
                _query(
                    "filter",
                    {"type": "string", "pattern": "^(scene|tool):.+$"},
                    "scene:<scene> or tool:<tool>",
                ),
            ],
            {"type": "object", "properties": {"series": period_series}},
        ),
        "/v1/activity/stickiness": (
            "Mean DAU over MAU per month",
            [],
            {"type": "object", "properties": {"series": period_series}},
        ),
        "/v1/activity/frequency": (
            "Users by number of active days per period",
            [enum("granularity", ["week", "month"], "week", "period length")],
            {"type": "object", "properties": {"series": period_series}},
        ),
        "/v1/activity/lifecycle": (
            "New, returning, resurrecting and dormant users per period",
            [enum("granularity", ["week", "month"], "week", "period length")],
            {"type": "object", "properties": {"series": period_series}},
        ),
        "/v1/orders/repurchase": (
            "Repurchase rate and days between orders over the range",
            [],
            {
                "type": "object",
                "properties": {
                    "customers": {"type": "integer"},
                    "repeat_customers": {"type": "integer"},
                    "repurchase_rate": {"type": "number"},
                    "median_days_between_orders": {"type": ["number", "null"]},
                    "p90_days_between_orders": {"type": ["number", "null"]},
                },
            },
        ),
    }
    return {
        path: {
            "get": {
                "summary": f"{summary} (role: reader)",
                "parameters": [*dates, *parameters, *_freshness_parameters()],
                "responses": {
                    "200": {"description": summary, "content": _json(_stamped(schema))},
                    "202": _not_yet(),
                    **_errors(400, 401, 403),
                },
            }
        }
        for path, (summary, parameters, schema) in endpoints.items()
    }


def _audit_paths() -> dict[str, Any]:
    stream = [
        {"name": "kind", "in": "path", "required": True, "schema": {"enum": list(STREAM_KINDS)}},
        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    event = {
        "type": "object",
        "properties": {
            "position": {"type": "integer"},
            "stream_id": {"type": "string", "format": "uuid"},
            "version": {"type": "integer"},
            "type": {"type": "string"},
            "schema_version": {"type": "integer"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "recorded_at": {"type": "string", "format": "date-time"},
            "user_id": {"type": ["string", "null"]},
            "context": {"type": "object"},
            "data": {"type": "object", "description": "decimals as strings, upcast to the current schema"},
            "event_id": {"type": "string", "format": "uuid"},
            "hash": {"type": ["string", "null"], "description": "SHA-256 chained over the event before"},
        },
    }
    events = {"type": "object", "properties": {"events": {"type": "array", "items": event}}}
    return {
        "/v1/audit/streams/{kind}/{key}/events": {
            "get": {
                "summary": "A stream's events in order (role: auditor)",
                "parameters": stream,
                "responses": {
                    "200": {"description": "The history", "content": _json(events)},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/audit/streams/{kind}/{key}/state": {
            "get": {
                "summary": "The entity's state as of a recorded time or at a version (role: auditor)",
                "parameters": [
                    *stream,
                    _query("as_of", {"type": "string", "format": "date-time"}, "recorded at or before"),
                    _query("version", {"type": "integer", "minimum": 1}, "up to this stream version"),
                ],
                "responses": {
                    "200": {
                        "description": "The state",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "kind": {"type": "string"},
                                    "key": {"type": "string"},
                                    "version": {"type": "integer"},
                                    "as_of": {"type": ["string", "null"]},
                                    "state": {"type": "object"},
                                },
                            }
                        ),
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/audit/log": {
            "get": {
                "summary": "The global log in order, paged; NDJSON when asked with Accept (role: auditor)",
                "parameters": [
                    _query("after", {"type": "integer", "minimum": 0}, "events above this position"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}, "page size (1000)"),
                ],
                "responses": {
                    "200": {
                        "description": "A page, or with `Accept: application/x-ndjson` one event per line",
                        "content": {
                            **_json(
                                {
                                    "type": "object",
                                    "properties": {
                                        "events": {"type": "array", "items": event},
                                        "next_after": {"type": ["integer", "null"]},
                                    },
                                }
                            ),
                            "application/x-ndjson": {"schema": event},
                        },
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/audit/verify": {
            "get": {
                "summary": "Walk the tamper-evidence chain (role: auditor)",
                "responses": {
                    "200": {
                        "description": "ok with the head hash, or the first position that fails",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "events": {"type": "integer"},
                                    "head_hash": {"type": "string"},
                                    "broken_at": {"type": "integer"},
                                    "reason": {"type": "string"},
                                },
                            }
                        ),
                    },
                    **_errors(401, 403),
                },
            }
        },
    }


def _admin_paths() -> dict[str, Any]:
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    status = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "state": {"enum": ["never_rebuilt", "running", "switched", "failed", "abandoned"]},
            "position": {"type": "integer"},
            "target": {"type": "integer"},
            "events_per_s": {"type": "integer"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "error": {"type": ["string", "null"]},
        },
    }
    return {
        "/v1/admin/projections/{name}/rebuild": {
            "post": {
                "summary": "Rebuild a projection beside the live one and switch when caught up (role: admin)",
                "parameters": name,
                "responses": {
                    "202": {"description": "Started", "content": _json(status)},
                    **_errors(401, 403, 404, 409),
                },
            }
        },
        "/v1/admin/projections/{name}": {
            "get": {
                "summary": "Progress of the projection's latest rebuild (role: admin)",
                "parameters": name,
                "responses": {
                    "200": {"description": "Progress", "content": _json(status)},
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/admin/users/{user_id}/erase": {
            "post": {
                "summary": "Erase a user's personal data: record PersonalDataErased, destroy their key (role: admin)",
                "parameters": [
                    {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "202": {
                        "description": "Erased; personal fields read as [erased] from now on",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "user_id": {"type": "string"},
                                    "erased": {"type": "boolean"},
                                    "position": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/admin/projections/verify": {
            "get": {
                "summary": "Rebuild every read model into scratch space and compare with the live one (role: admin)",
                "responses": {
                    "200": {
                        "description": "ok, the checksums per table, and the first differences",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "checked": {"type": "array", "items": {"type": "object"}},
                                    "differences": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        ),
                    },
                    **_errors(401, 403, 409),
                },
            }
        },
    }


def _event_schema(spec: TypeSpec) -> dict[str, Any]:
    required = ["type", "occurred_at"] + (["user_id"] if spec.needs_user else [])
    properties: dict[str, Any] = {
        "event_id": {"type": "string", "format": "uuid", "description": "idempotency key"},
        "type": {"const": spec.name},
        "occurred_at": {"type": "string", "format": "date-time"},
        "data": _object(spec.fields),
        "context": _ref("Context"),
    }
    if spec.needs_user:
        properties["user_id"] = {"type": "string", "minLength": 1, "maxLength": 128}
    if any(f.required for f in spec.fields):
        required.append("data")
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _object(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _field(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


_DECIMAL = {"type": ["string", "number"], "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal"}


def _money_limits(spec: FieldSpec) -> str:
    places = f", at most {spec.max_places} decimal places" if spec.max_places is not None else ""
    magnitude = f", magnitude below {spec.magnitude_below}" if spec.magnitude_below is not None else ""
    return places + magnitude


def _field(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "string":
        return {"type": "string", "minLength": 1, "maxLength": spec.max_length}
    if spec.kind == "currency":
        return {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"}
    if spec.kind == "country":
        return {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2"}
    if spec.kind == "enum":
        return {"enum": list(spec.choices)}
    if spec.kind == "int":
        schema: dict[str, Any] = {"type": "integer", "minimum": spec.minimum}
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        return schema
    if spec.kind == "decimal":
        bound = "exclusiveMinimum" if spec.exclusive_minimum else "minimum"
        return {**_DECIMAL, "description": f"decimal, {bound} {spec.minimum}{_money_limits(spec)}"}
    if spec.kind == "timestamp":
        return {"type": "string", "format": "date-time"}
    if spec.kind == "items":
        item = {
            "type": "object",
            "additionalProperties": False,
            "required": ["sku", "quantity", "unit_price"],
            "properties": {
                "sku": {"type": "string"},
                "quantity": {"type": "integer", "minimum": 1},
                "unit_price": _DECIMAL,
            },
        }
        return {"type": "array", "items": item}
    return {"type": "object"}


def _user_state_schema() -> dict[str, Any]:
    time = {"type": ["string", "null"], "format": "date-time"}
    score = {"type": "integer", "minimum": 1, "maximum": 5, "description": "quintile among customers"}
    return {
        "type": "object",
        "properties": {
            "user_id": {"type": "string"},
            "first_seen_at": {"type": "string", "format": "date-time"},
            "signup_at": time,
            "first_order_at": time,
            "last_active_at": time,
            "last_order_at": time,
            "orders": {"type": "integer"},
            "net_revenue": {"type": "string", "description": "decimal: paid minus refunded"},
            "points": {"type": "integer"},
            "open_tickets": {"type": "integer"},
            "country": {"type": ["string", "null"]},
            "channel": {"type": ["string", "null"]},
            "tier": {"type": ["string", "null"]},
            "resurrected_on": {"type": ["string", "null"], "format": "date"},
            "lifecycle": {"enum": ["new", "active", "resurrected", "at_risk", "churned", None]},
            "segment": {"enum": [*SEGMENT_NAMES, None]},
            "rfm": {
                "description": "RFM at the watermark; null for a user without orders",
                "type": ["object", "null"],
                "properties": {
                    "recency_days": {"type": "integer", "description": "days since the last order"},
                    "frequency": {"type": "integer", "description": "orders placed"},
                    "monetary": {"type": "string", "description": "decimal: net revenue"},
                    "r": score,
                    "f": score,
                    "m": score,
                    "segment": {"enum": list(SEGMENT_NAMES)},
                },
            },
            "last_position": {"type": "integer"},
        },
    }


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": ["integer", "null"]},
                                "field": {"type": "string"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    }


def _error_response(status: int) -> dict[str, Any]:
    return {"description": f"codes: {ERROR_CODES[status]}", "content": _json(_ref("Error"))}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
