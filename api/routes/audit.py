"""Audit (api.md "Audit"): a stream's history and its state at a point, the global log in pages or
as NDJSON, and the walk of the tamper-evidence chain."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from flask import Blueprint, Response, current_app, request, stream_with_context
from pydantic import BaseModel, Field, model_validator

from api.common import POSITION_MAX, NoParameters, Rfc3339, Timestamp
from api.context import AuditTrail
from api.declared import Query, QueryError, declare
from api.errors import ApiError
from api.event_json import jsonable, present_event
from domain.audit import STREAM_KINDS, AuditedEvent, state_at
from domain.envelope import format_timestamp
from domain.model import stream_id

blueprint = Blueprint("audit", __name__)

MAX_LOG_PAGE = 10_000
DEFAULT_LOG_PAGE = 1000
NDJSON = "application/x-ndjson"
STREAM = {"kind": {"enum": list(STREAM_KINDS)}, "key": {"type": "string", "minLength": 1}}


class StateQuery(Query):
    rules: ClassVar[Mapping[str, str]] = {"version": "give as_of or version, not both"}

    as_of: Timestamp | None = Field(None, description="the state from the events recorded at or before")
    version: int | None = Field(
        None, ge=1, le=POSITION_MAX, description="the state up to this stream version"
    )

    @model_validator(mode="after")
    def _one_point(self) -> StateQuery:
        if self.as_of is not None and self.version is not None:
            raise QueryError("version", "give as_of or version, not both")
        return self


class LogQuery(Query):
    after: int = Field(0, ge=0, le=POSITION_MAX, description="events above this position")
    limit: int | None = Field(None, ge=1, le=MAX_LOG_PAGE, description=f"page size ({DEFAULT_LOG_PAGE})")


class StoredEvent(BaseModel):
    position: int
    stream_id: str = Field(json_schema_extra={"format": "uuid"})
    version: int
    type: str
    schema_version: int
    occurred_at: Rfc3339
    recorded_at: Rfc3339
    user_id: str | None
    context: dict[str, Any]
    data: dict[str, Any] = Field(description="decimals as strings, upcast to the current schema")
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    hash: str | None = Field(description="SHA-256 chained over the event before")


class StreamHistory(BaseModel):
    events: list[StoredEvent]


class StreamState(BaseModel):
    kind: str
    key: str
    version: int
    as_of: Rfc3339 | None
    state: dict[str, Any]


class LogPage(BaseModel):
    events: list[StoredEvent]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the head")


class ChainVerdict(BaseModel):
    ok: bool
    events: int = Field(description="events verified before the break, or all")
    head_hash: str | None = None
    broken_at: int | None = None
    reason: str | None = None


def _trail() -> AuditTrail:
    return current_app.config["COHORTLINE"].audit


def _history(kind: str, key: str) -> list[AuditedEvent]:
    if kind not in STREAM_KINDS:
        raise ApiError(
            404, "unknown_stream_kind", f"no streams of kind {kind!r}; kinds: {', '.join(STREAM_KINDS)}"
        )
    history = _trail().stream(stream_id(kind, key))
    if not history:
        raise ApiError(404, "stream_not_found", f"no events in the {kind} stream {key!r}")
    return history


@declare(
    blueprint,
    "GET",
    "/v1/audit/streams/<kind>/<text:key>/events",
    summary="A stream's events in order",
    role="auditor",
    query=NoParameters,
    result=StreamHistory,
    errors=(404,),
    path_parameters=STREAM,
)
def stream_events(_: NoParameters, kind: str, key: str) -> StreamHistory:
    return StreamHistory.model_validate({"events": [present_event(e) for e in _history(kind, key)]})


@declare(
    blueprint,
    "GET",
    "/v1/audit/streams/<kind>/<text:key>/state",
    summary="The entity's state as of a recorded time or at a version",
    role="auditor",
    query=StateQuery,
    result=StreamState,
    errors=(404,),
    path_parameters=STREAM,
)
def stream_state(q: StateQuery, kind: str, key: str) -> StreamState:
    history = _history(kind, key)
    entity = state_at(history, as_of=q.as_of, version=q.version)
    if entity is None:
        point = f"as of {format_timestamp(q.as_of)}" if q.as_of else f"at version {q.version}"
        raise ApiError(404, "not_yet_existing", f"the {kind} stream {key!r} had no events {point}")
    return StreamState.model_validate(
        {
            "kind": kind,
            "key": key,
            "version": entity.version,
            "as_of": format_timestamp(q.as_of) if q.as_of else None,
            "state": jsonable(entity.state()),
        }
    )


@declare(
    blueprint,
    "GET",
    "/v1/audit/log",
    summary="The global log in order, paged; NDJSON, one event per line, when asked with Accept",
    role="auditor",
    query=LogQuery,
    result=LogPage,
    also={NDJSON: StoredEvent},
)
def log(q: LogQuery) -> LogPage | Response:
    trail = _trail()
    if request.accept_mimetypes.best_match(["application/json", NDJSON]) == NDJSON:
        return Response(stream_with_context(_ndjson(trail, q.after, q.limit)), mimetype=NDJSON)
    head = trail.head()
    page = trail.log(q.after, q.limit or DEFAULT_LOG_PAGE)
    more = bool(page) and page[-1].position < head
    return LogPage.model_validate(
        {"events": [present_event(e) for e in page], "next_after": page[-1].position if more else None}
    )


def _ndjson(trail: AuditTrail, after: int, limit: int | None) -> Iterator[bytes]:
    """One event per line, read a chunk at a time: the whole log in constant memory (or `limit`)."""
    for sent, audited in enumerate(trail.follow(after)):
        if limit is not None and sent >= limit:
            return
        yield json.dumps(present_event(audited), separators=(",", ":")).encode() + b"\n"


@declare(
    blueprint,
    "GET",
    "/v1/audit/verify",
    summary="Walk the tamper-evidence chain: ok with the head hash, or the first position that fails",
    role="auditor",
    query=NoParameters,
    result=ChainVerdict,
)
def verify(_: NoParameters) -> ChainVerdict:
    verdict = _trail().verify()
    if verdict.ok:
        return ChainVerdict(ok=True, events=verdict.events, head_hash=verdict.head_hash)
    return ChainVerdict(ok=False, events=verdict.events, broken_at=verdict.broken_at, reason=verdict.reason)
