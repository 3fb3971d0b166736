"""GET /v1/openapi.json: the OpenAPI 3.1 description of every route, built from the same catalogue
that validates events, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

import api.routes.activity
import api.routes.admin
import api.routes.audit
import api.routes.campaigns
import api.routes.events
import api.routes.features
import api.routes.orders
import api.routes.overview
import api.routes.retention
import api.routes.service
import api.routes.status
import api.routes.users
import api.routes.value  # noqa: F401 - the route modules declare their operations
from api.declared import openapi_paths
from domain.catalogue import CONTEXT_FIELDS, MAX_AMOUNT, MONEY_PLACES, MONEY_TEXT, TYPES, FieldSpec, TypeSpec
from domain.envelope import ITEM_FIELDS, TEXT_PATTERN

blueprint = Blueprint("openapi", __name__)

ERROR_CODES = {
    400: "invalid_json, invalid_parameter, invalid_cursor",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found, user_not_found, campaign_not_found, unknown_stream_kind, stream_not_found, "
    "not_yet_existing, projection_not_found",
    409: "conflict (details carry per-event codes such as order_not_placed, event_id_reused), "
    "rebuild_running, read_models_moving",
    413: "batch_too_large",
    422: "validation_failed, unknown_feature",
    429: "rate_limited: this key spent its request budget (COHORTLINE_RATE_LIMIT); Retry-After says when to retry",
    503: "unavailable: a database or search backend is unreachable; Retry-After says when to retry",
}


@blueprint.get("/v1/openapi.json")
def openapi() -> Response:
    return jsonify(document())


def document() -> dict[str, Any]:
    declared_paths, declared_schemas = openapi_paths()
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
            **declared_paths,
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, every one described in the README (role: metrics)",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": {"$ref": "#/components/responses/401"},
                        "403": {"$ref": "#/components/responses/403"},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Segment's write key: the producer key as user name and an empty "
                    "password (or `writeKey` in the body)",
                },
            },
            "schemas": {
                "Error": _error_schema(),
                "Event": {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in _sender_types()]},
                "Context": _object(CONTEXT_FIELDS),
                **{spec.name: _event_schema(spec) for spec in TYPES.values() if spec.accepted_from_senders},
                **declared_schemas,
            },
            "responses": {
                **{str(status): _error_response(status) for status in ERROR_CODES},
                "NotYet": _not_yet(),
                "414": {
                    "description": "the request line is longer than the HTTP server accepts (4,094 bytes)"
                },
            },
        },
    }


def _sender_types() -> list[str]:
    return [spec.name for spec in TYPES.values() if spec.accepted_from_senders]


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


def _event_schema(spec: TypeSpec) -> dict[str, Any]:
    required = ["type", "occurred_at"] + (["user_id"] if spec.needs_user else [])
    properties: dict[str, Any] = {
        "event_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "idempotency key; absent or null: a fresh one",
        },
        "type": {"const": spec.name},
        "occurred_at": {"type": "string", "format": "date-time"},
        "data": _object(spec.fields),
        "context": _nullable(_ref("Context")),
    }
    if spec.needs_user:
        properties["user_id"] = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": TEXT_PATTERN}
    else:
        properties["user_id"] = {"type": "null", "description": f"{spec.name} takes no user"}
    if any(f.required for f in spec.fields):
        required.append("data")
    else:
        properties["data"] = _nullable(properties["data"])
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _object(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _field(f) if f.required else _nullable(_field(f)) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def _money(positive: bool) -> dict[str, Any]:
    """An amount: a plain decimal string, or a JSON number (whose places JSON Schema cannot bound:
    `x-rules` of the append says so)."""
    lower = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    return {
        "anyOf": [
            {"type": "string", "pattern": f"^{MONEY_TEXT}$"},
            {"type": "number", **lower, "exclusiveMaximum": MAX_AMOUNT},
        ],
        "description": f"{'> 0' if positive else '>= 0'}, below {MAX_AMOUNT:,}, "
        f"at most {MONEY_PLACES} decimal places",
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field: null reads as absent."""
    return {"anyOf": [schema, {"type": "null"}]}


def _field(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "string":
        return {"type": "string", "minLength": 1, "maxLength": spec.max_length, "pattern": TEXT_PATTERN}
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
        return _money(spec.exclusive_minimum)
    if spec.kind == "timestamp":
        return {"type": "string", "format": "date-time"}
    if spec.kind == "items":
        return {"type": "array", "items": _object(ITEM_FIELDS)}
    return {"type": "object"}


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
                                "known": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
            }
        },
    }


def _error_response(status: int) -> dict[str, Any]:
    return {"description": f"codes: {ERROR_CODES[status]}", "content": _json(_ref("Error"))}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
