"""One declaration per question: a route's typed query (a pydantic model of its query string) and
typed result give its parsing, its 400 `invalid_parameter` details and its OpenAPI description.

A thin adapter rather than a framework: the routes keep Flask, the key check (api.auth) and the
error envelope (api.errors), and the document is built from pydantic's JSON Schema."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ClassVar

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, ValidationError

from api.auth import KeySource, require
from api.errors import ApiError
from api.freshness import stamped, wait_for_position


class Query(BaseModel):
    """A route's query string: unknown parameters are refused, values are parsed from text.

    `rules` names what JSON Schema cannot state (a rule over several parameters, a value only the
    server can issue), by the parameter a breach is reported on; the document lists them
    (`x-rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    rules: ClassVar[Mapping[str, str]] = {}


class QueryError(ValueError):
    """Raised by a query's validators for a rule JSON Schema cannot state, naming the parameter;
    `code` is the error code of the 400 when it is the first error found."""

    def __init__(self, field: str, message: str, code: str = "invalid_parameter"):
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    role: str | None
    query: type[Query] | None
    result: type[BaseModel] | None
    statuses: tuple[int, ...]
    waits: bool
    """Answers 202 when the read models have not reached `min_position` within `wait_ms`."""
    status: int = 200
    path_parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Each path parameter's JSON Schema (its value is checked by the view)."""
    also: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """Other media types the success answer may take, by `Accept`, with the schema of each item."""
    body: Mapping[str, Any] | None = None
    """The JSON Schema of the request body, which the view reads and checks itself."""
    body_rules: Mapping[str, str] = field(default_factory=dict)
    """What the body's schema cannot state, by the field a breach is reported on (`x-rules`)."""
    write_key: bool = False
    """Also takes the key as Segment's libraries send their write key (api.segment)."""


OPERATIONS: list[Operation] = []


def declare(
    blueprint: Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    role: str | None,
    query: type[Query] | None = None,
    result: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    waits: bool = False,
    status: int = 200,
    path_parameters: Mapping[str, Mapping[str, Any]] | None = None,
    also: Mapping[str, type[BaseModel]] | None = None,
    body: Mapping[str, Any] | None = None,
    body_rules: Mapping[str, str] | None = None,
    key_source: KeySource | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the view for `method path` (a Flask rule): it is called with the parsed query (if any) and the path's
    parameters; a model it returns is rendered as JSON, anything else is passed to Flask.

    A view that `waits` is called once the read models reach the query's `min_position` (202
    otherwise), with their progress after the query; it returns its answer's fields, which are
    stamped with that progress (`as_of`, `watermark`) and checked against `result`."""
    statuses = tuple(
        sorted({*errors, 503, *((400, 414) if query else ()), *((401, 403, 429) if role else ())})
    )
    OPERATIONS.append(
        Operation(
            method,
            path,
            summary,
            role,
            query,
            result,
            statuses,
            waits,
            status,
            path_parameters or {},
            also or {},
            body,
            body_rules or {},
            key_source is not None,
        )
    )

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def handle(**path_parameters: Any) -> Any:
            arguments = (parse(query),) if query else ()
            if not waits:
                return render(view(*arguments, **path_parameters), status)
            assert result is not None and arguments, "a route that waits has a query and a result"
            current = wait_for_position(arguments[0].min_position, arguments[0].wait_ms)
            fields = view(*arguments, current, **path_parameters)
            return render(result.model_validate(stamped(fields, current)), status)

        guarded = require(role, also=key_source)(handle) if role else handle
        blueprint.add_url_rule(path, view.__name__, guarded, methods=[method])
        return view

    return register


def parse(query: type[Query], args: Mapping[str, str] | None = None) -> Any:
    """The request's query string as `query`; 400 `invalid_parameter` listing every bad field."""
    given = request.args if args is None else args
    repeated = [name for name in given if len(given.getlist(name)) > 1] if args is None else []
    if repeated:
        message = "given more than once"
        details = [{"field": name, "message": message} for name in repeated]
        raise ApiError(400, "invalid_parameter", f"{repeated[0]}: {message}", details)
    try:
        return query.model_validate({name: given[name] for name in given})
    except ValidationError as e:
        errors = e.errors(include_url=False)
        details = [_detail(error) for error in errors]
        cause = errors[0].get("ctx", {}).get("error")
        code = cause.code if isinstance(cause, QueryError) else "invalid_parameter"
        first = details[0]
        raise ApiError(400, code, f"{first['field']}: {first['message']}", details) from None


def render(answer: Any, status: int = 200) -> Any:
    """A model as JSON with the operation's success status; a Flask response as it is."""
    if isinstance(answer, BaseModel):
        response = jsonify(answer.model_dump(mode="json", by_alias=True, exclude_unset=True))
        response.status_code = status
        return response
    return answer


def _detail(error: Mapping[str, Any]) -> dict[str, str]:
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, QueryError):
        return {"field": cause.field, "message": cause.message}
    field = str(error["loc"][0]) if error["loc"] else ""
    return {"field": field, "message": _message(error)}


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown parameter"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(chr(39), '')}"
    if kind.startswith("int_"):
        return "must be an integer"
    if kind.startswith("date_"):
        return "must be a date as YYYY-MM-DD"
    if kind.startswith("datetime_"):
        return "must be an RFC 3339 timestamp with offset"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        symbol = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        bound = next(iter(ctx.values()))
        return f"must be {symbol[kind]} {bound}"
    return str(error["msg"]).removeprefix("Value error, ")


def _openapi_path(rule: str) -> str:
    """Flask's `<name>` and `<converter:name>` as OpenAPI's `{name}`."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """The declared operations as OpenAPI 3.1 paths, and the schemas they refer to."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for operation in OPERATIONS:
        described = _described(operation, schemas)
        paths.setdefault(_openapi_path(operation.path), {})[operation.method.lower()] = described
    return paths, schemas


def _described(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": operation.summary}
    if operation.result is not None:
        success["content"] = {"application/json": {"schema": _result(operation.result, schemas)}}
        success["content"] |= {
            media: {"schema": _result(item, schemas)} for media, item in operation.also.items()
        }
    responses: dict[str, Any] = {str(operation.status): success}
    if operation.waits:
        responses["202"] = {"$ref": "#/components/responses/NotYet"}
    responses |= {str(status): {"$ref": f"#/components/responses/{status}"} for status in operation.statuses}
    role = f" (role: {operation.role})" if operation.role else ""
    described: dict[str, Any] = {"summary": operation.summary + role}
    if operation.write_key:
        described["security"] = [{"bearer": []}, {"writeKey": []}]
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(operation.body)}},
        }
    rules = {**(operation.query.rules if operation.query else {}), **operation.body_rules}
    if rules:
        described["x-rules"] = rules
    return described | {
        "parameters": [
            *(
                {"name": name, "in": "path", "required": True, "schema": dict(schema)}
                for name, schema in operation.path_parameters.items()
            ),
            *(_parameters(operation.query) if operation.query else []),
        ],
        "responses": responses,
    }


def _parameters(query: type[Query]) -> list[dict[str, Any]]:
    schema = query.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in sorted(schema["properties"].items(), key=lambda item: _depth(query, item[0])):
        description = prop.pop("description", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": _plain(prop)}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _depth(query: type[Query], parameter: str) -> int:
    """How far up the query's classes a parameter is declared: the route's own come first, then
    those it inherits (freshness last)."""
    name = next((k for k, f in query.model_fields.items() if (f.alias or k) == parameter), parameter)
    return next(
        (depth for depth, cls in enumerate(query.__mro__) if name in inspect.get_annotations(cls)),
        len(query.__mro__),
    )


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without pydantic's title and without `null`: a query parameter is either
    given or absent."""
    options = [o for o in prop.get("anyOf", ()) if o.get("type") != "null"]
    plain = {k: v for k, v in prop.items() if k not in ("title", "anyOf")}
    if len(options) == 1:
        plain |= options[0]
    if plain.get("default", "") is None:
        del plain["default"]
    return plain


def _result(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(
        by_alias=True, mode="serialization", ref_template="#/components/schemas/{model}"
    )
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}
