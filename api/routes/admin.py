"""Admin (api.md "Admin"): blue/green rebuilds of read models, their progress and verification, and
erasure of a user's personal data."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, Field

from api.common import NoParameters, Rfc3339
from api.context import ReadModelAdmin
from api.declared import declare
from api.errors import ApiError
from domain.errors import UnknownUser
from projections.admin import ReadModelsMoving, RebuildRunning, UnknownProjection

blueprint = Blueprint("admin", __name__)

NAME = {"name": {"type": "string"}}


class RebuildStatus(BaseModel):
    name: str
    state: Literal["never_rebuilt", "running", "switched", "failed", "abandoned"]
    position: int | None = Field(None, description="the log position the copy has reached")
    target: int | None = Field(None, description="the log's head when the rebuild started")
    events_per_s: int | None = None
    started_at: Rfc3339 | None = None
    updated_at: Rfc3339 | None = None
    finished_at: Rfc3339 | None = None
    error: str | None = None


class TableCheck(BaseModel):
    table: str
    rows: int
    checksum: str
    ok: bool


class ProjectionCheck(BaseModel):
    name: str
    position: int
    tables: list[TableCheck]


class VerifyReport(BaseModel):
    ok: bool
    checked: list[ProjectionCheck]
    differences: list[dict[str, Any]] = Field(description="the first rows that differ, per table")


class Erased(BaseModel):
    user_id: str
    erased: bool
    position: int = Field(description="the log position of the PersonalDataErased event")


def _read_models() -> ReadModelAdmin:
    return current_app.config["COHORTLINE"].read_models


def _unknown(name: str) -> ApiError:
    known = ", ".join(current_app.config["COHORTLINE"].projections)
    return ApiError(404, "projection_not_found", f"no projection named {name!r}; projections: {known}")


@declare(
    blueprint,
    "POST",
    "/v1/admin/projections/<name>/rebuild",
    summary="Rebuild a projection beside the live one and switch when caught up",
    role="admin",
    query=NoParameters,
    result=RebuildStatus,
    status=202,
    errors=(404, 409),
    path_parameters=NAME,
)
def start_rebuild(_: NoParameters, name: str) -> RebuildStatus:
    try:
        return RebuildStatus.model_validate(_read_models().start(name))
    except UnknownProjection:
        raise _unknown(name) from None
    except RebuildRunning:
        raise ApiError(409, "rebuild_running", f"a rebuild of {name!r} is under way") from None


@declare(
    blueprint,
    "GET",
    "/v1/admin/projections/verify",
    summary="Rebuild every read model into scratch space and compare it with the live one",
    role="admin",
    query=NoParameters,
    result=VerifyReport,
    errors=(409,),
)
def verify(_: NoParameters) -> VerifyReport:
    try:
        return VerifyReport.model_validate(_read_models().verify())
    except ReadModelsMoving as e:
        raise ApiError(
            409, "read_models_moving", f"the live read models never stood still at one position: {e}"
        ) from None
    except RebuildRunning as e:
        raise ApiError(409, "rebuild_running", str(e)) from None


@declare(
    blueprint,
    "GET",
    "/v1/admin/projections/<name>",
    summary="Progress of the projection's latest rebuild",
    role="admin",
    query=NoParameters,
    result=RebuildStatus,
    errors=(404,),
    path_parameters=NAME,
)
def rebuild_status(_: NoParameters, name: str) -> RebuildStatus:
    try:
        status = _read_models().status(name)
    except UnknownProjection:
        raise _unknown(name) from None
    return RebuildStatus.model_validate(status or {"name": name, "state": "never_rebuilt"})


@declare(
    blueprint,
    "POST",
    "/v1/admin/users/<text:user_id>/erase",
    summary="Erase a user's personal data: record PersonalDataErased and destroy their key",
    role="admin",
    query=NoParameters,
    result=Erased,
    status=202,
    errors=(404,),
    path_parameters={"user_id": {"type": "string"}},
)
def erase_user(_: NoParameters, user_id: str) -> Erased:
    try:
        return Erased.model_validate(current_app.config["COHORTLINE"].erasure.erase(user_id))
    except UnknownUser:
        raise ApiError(404, "user_not_found", f"no events for user {user_id!r}") from None
