"""The user state and user search (metrics.md "User state")."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from api.auth import require
from api.errors import ApiError
from api.freshness import stamped, wait_for_read_models
from api.params import int_param, invalid, reject_unknown, str_param, time_param
from projections.lifecycle import STATES
from projections.presenters import present_user, user_state
from projections.rfm import SEGMENT_NAMES, Cuts, rfm_cuts, segment_boxes
from projections.search import MAX_PAGE, UserQuery, decode_cursor
from projections.tracking import Progress
from projections.users import user_row

blueprint = Blueprint("users", __name__)

SEARCH_PARAMS = {
    "q",
    "country",
    "min_orders",
    "lifecycle",
    "segment",
    "last_active_before",
    "size",
    "after",
    "min_position",
    "wait_ms",
}


@blueprint.get("/v1/users/search")
@require("reader")
def search() -> Response:
    reject_unknown(SEARCH_PARAMS)
    after = str_param("after", max_length=2048)
    if after is not None:
        try:
            decode_cursor(after)
        except ValueError:
            raise invalid("after", "malformed cursor") from None
    lifecycle = str_param("lifecycle")
    if lifecycle is not None and lifecycle not in STATES:
        raise invalid("lifecycle", f"must be one of {', '.join(STATES)}")
    segment = str_param("segment")
    if segment is not None and segment not in SEGMENT_NAMES:
        raise invalid("segment", f"must be one of {', '.join(SEGMENT_NAMES)}")
    current = wait_for_read_models()
    context = current_app.config["COHORTLINE"]
    cuts = current_cuts(current)
    query = UserQuery(
        q=str_param("q"),
        lifecycle=lifecycle,
        segment=segment_boxes(segment, cuts) if segment else None,
        watermark=current.watermark,
        thresholds=context.lifecycle,
        country=str_param("country", max_length=2),
        min_orders=int_param("min_orders", minimum=0),
        last_active_before=time_param("last_active_before"),
        size=int_param("size", minimum=1, maximum=MAX_PAGE) or 20,
        after=after,
    )
    page = context.search.search(query)
    found = [user_state(user, current.watermark, context.lifecycle, cuts) for user in page.users]
    return jsonify(stamped({"users": found, "next": page.next}, current))


@blueprint.get("/v1/users/<user_id>")
@require("reader")
def get_user(user_id: str) -> Response:
    reject_unknown({"min_position", "wait_ms"})
    current = wait_for_read_models()
    with current_app.config["COHORTLINE"].read_engine.connect() as conn:
        row = user_row(conn, user_id)
    if row is None:
        raise ApiError(404, "user_not_found", f"no events for user {user_id!r}")
    thresholds = current_app.config["COHORTLINE"].lifecycle
    found = user_state(present_user(row), current.watermark, thresholds, current_cuts(current))
    return jsonify(stamped(found, current))


def current_cuts(current: Progress) -> Cuts:
    """The RFM cut points of the read models this answer reflects, computed once per version."""
    context = current_app.config["COHORTLINE"]

    def compute() -> Cuts:
        with context.read_engine.connect() as conn:
            return rfm_cuts(conn)

    return context.rfm_cuts.get(current.version, compute)
