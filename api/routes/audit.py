"""Audit (api.md "Audit"): a stream's history and its state at a point, the global log in pages or
as NDJSON, and the walk of the tamper-evidence chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from api.auth import require
from api.context import AuditTrail
from api.errors import ApiError
from api.event_json import jsonable, present_event
from api.params import int_param, invalid, reject_unknown, time_param
from domain.audit import STREAM_KINDS, AuditedEvent, state_at
from domain.model import stream_id
from projections.schema import rfc3339

blueprint = Blueprint("audit", __name__)

MAX_LOG_PAGE = 10_000
DEFAULT_LOG_PAGE = 1000
NDJSON = "application/x-ndjson"


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


@blueprint.get("/v1/audit/streams/<kind>/<path:key>/events")
@require("auditor")
def stream_events(kind: str, key: str) -> Response:
    reject_unknown(set())
    return jsonify({"events": [present_event(e) for e in _history(kind, key)]})


@blueprint.get("/v1/audit/streams/<kind>/<path:key>/state")
@require("auditor")
def stream_state(kind: str, key: str) -> Response:
    reject_unknown({"as_of", "version"})
    as_of = time_param("as_of")
    version = int_param("version", minimum=1)
    if as_of is not None and version is not None:
        raise invalid("version", "give as_of or version, not both")
    history = _history(kind, key)
    entity = state_at(history, as_of=as_of, version=version)
    if entity is None:
        point = f"as of {rfc3339(as_of)}" if as_of else f"at version {version}"
        raise ApiError(404, "not_yet_existing", f"the {kind} stream {key!r} had no events {point}")
    return jsonify(
        {
            "kind": kind,
            "key": key,
            "version": entity.version,
            "as_of": rfc3339(as_of) if as_of else None,
            "state": jsonable(entity.state()),
        }
    )


@blueprint.get("/v1/audit/log")
@require("auditor")
def log() -> Response:
    reject_unknown({"after", "limit"})
    after = int_param("after", minimum=0) or 0
    limit = int_param("limit", minimum=1, maximum=MAX_LOG_PAGE)
    trail = _trail()
    if request.accept_mimetypes.best_match(["application/json", NDJSON]) == NDJSON:
        return Response(stream_with_context(_ndjson(trail, after, limit)), mimetype=NDJSON)
    head = trail.head()
    page = trail.log(after, limit or DEFAULT_LOG_PAGE)
    more = bool(page) and page[-1].position < head
    return jsonify(
        {"events": [present_event(e) for e in page], "next_after": page[-1].position if more else None}
    )


def _ndjson(trail: AuditTrail, after: int, limit: int | None) -> Iterator[bytes]:
    """One event per line, read a chunk at a time: the whole log in constant memory (or `limit`)."""
    for sent, audited in enumerate(trail.follow(after)):
        if limit is not None and sent >= limit:
            return
        yield json.dumps(present_event(audited), separators=(",", ":")).encode() + b"\n"


@blueprint.get("/v1/audit/verify")
@require("auditor")
def verify() -> Response:
    reject_unknown(set())
    verdict = _trail().verify()
    body: dict[str, Any] = {"ok": verdict.ok, "events": verdict.events}
    if verdict.ok:
        body["head_hash"] = verdict.head_hash
    else:
        body.update(broken_at=verdict.broken_at, reason=verdict.reason)
    return jsonify(body)
