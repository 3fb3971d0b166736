"""Admin (api.md "Admin"): blue/green rebuilds of read models, their progress and verification, and
erasure of a user's personal data."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from api.auth import require
from api.context import ReadModelAdmin
from api.errors import ApiError
from api.params import reject_unknown
from domain.errors import UnknownUser
from projections.admin import ReadModelsMoving, RebuildRunning, UnknownProjection

blueprint = Blueprint("admin", __name__)


def _read_models() -> ReadModelAdmin:
    return current_app.config["COHORTLINE"].read_models


def _unknown(name: str) -> ApiError:
    known = ", ".join(current_app.config["COHORTLINE"].projections)
    return ApiError(404, "projection_not_found", f"no projection named {name!r}; projections: {known}")


@blueprint.post("/v1/admin/projections/<name>/rebuild")
@require("admin")
def start_rebuild(name: str) -> tuple[Response, int]:
    reject_unknown(set())
    try:
        return jsonify(_read_models().start(name)), 202
    except UnknownProjection:
        raise _unknown(name) from None
    except RebuildRunning:
        raise ApiError(409, "rebuild_running", f"a rebuild of {name!r} is under way") from None


@blueprint.get("/v1/admin/projections/verify")
@require("admin")
def verify() -> Response:
    reject_unknown(set())
    try:
        return jsonify(_read_models().verify())
    except ReadModelsMoving as e:
        raise ApiError(
            409, "read_models_moving", f"the live read models never stood still at one position: {e}"
        ) from None
    except RebuildRunning as e:
        raise ApiError(409, "rebuild_running", str(e)) from None


@blueprint.get("/v1/admin/projections/<name>")
@require("admin")
def rebuild_status(name: str) -> Response:
    reject_unknown(set())
    try:
        status = _read_models().status(name)
    except UnknownProjection:
        raise _unknown(name) from None
    return jsonify(status or {"name": name, "state": "never_rebuilt"})


@blueprint.post("/v1/admin/users/<user_id>/erase")
@require("admin")
def erase_user(user_id: str) -> tuple[Response, int]:
    reject_unknown(set())
    try:
        return jsonify(current_app.config["COHORTLINE"].erasure.erase(user_id)), 202
    except UnknownUser:
        raise ApiError(404, "user_not_found", f"no events for user {user_id!r}") from None
