"""Retention and activity analytics (api.md "Analytics", metrics.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from api.auth import require
from api.freshness import stamped, wait_for_read_models
from api.params import invalid, reject_unknown
from domain.catalogue import SCENES
from projections import reports
from projections.periods import Granularity, periods_between

blueprint = Blueprint("analytics", __name__)

FRESHNESS = {"min_position", "wait_ms"}
MAX_PERIODS = {"day": 731, "week": 260, "month": 120}


@blueprint.get("/v1/retention/cohorts")
@require("reader")
def retention() -> Response:
    allowed = {"granularity", "cohort", "return", "mode", "from", "to", "periods", "breakdown"}
    reject_unknown(allowed | FRESHNESS)
    granularity = _choice("granularity", ("day", "week", "month"), "month")
    definition = _choice("cohort", ("first_seen", "signup", "first_order"), "first_seen")
    returns = _choice("return", ("active", "order"), "active")
    mode = _choice("mode", ("on", "on_or_after"), "on")
    breakdown = _choice("breakdown", ("channel", "country"), None)
    start, end = _range(granularity)
    periods = _periods(granularity, start, end)
    current = wait_for_read_models()
    cohorts = _read(
        lambda conn: reports.retention(
            conn, granularity, definition, returns, mode, start, end, periods, current.watermark, breakdown
        )
    )
    body = {
        "granularity": granularity,
        "cohort": definition,
        "return": returns,
        "mode": mode,
        "cohorts": cohorts,
    }
    if breakdown:
        body["breakdown"] = breakdown
    return jsonify(stamped(body, current))


@blueprint.get("/v1/activity/active-users")
@require("reader")
def active_users() -> Response:
    reject_unknown({"granularity", "from", "to", "filter"} | FRESHNESS)
    granularity = _choice("granularity", ("day", "week", "month"), "day")
    start, end = _range(granularity)
    kind = _filter_kind()
    current = wait_for_read_models()
    series = _read(lambda conn: reports.active_users(conn, granularity, start, end, kind))
    body: dict[str, Any] = {"granularity": granularity, "series": series}
    if kind != "active":
        body["filter"] = kind
    return jsonify(stamped(body, current))


@blueprint.get("/v1/activity/stickiness")
@require("reader")
def stickiness() -> Response:
    reject_unknown({"from", "to"} | FRESHNESS)
    start, end = _range("day")
    current = wait_for_read_models()
    return jsonify(stamped({"series": _read(lambda conn: reports.stickiness(conn, start, end))}, current))


@blueprint.get("/v1/activity/frequency")
@require("reader")
def frequency() -> Response:
    return _weekly_or_monthly(reports.frequency)


@blueprint.get("/v1/activity/lifecycle")
@require("reader")
def lifecycle() -> Response:
    return _weekly_or_monthly(reports.lifecycle)


def _weekly_or_monthly(report: Callable[[Any, Granularity, date, date], list[dict[str, Any]]]) -> Response:
    """A per-period report over `from`..`to` by week (default) or month."""
    reject_unknown({"granularity", "from", "to"} | FRESHNESS)
    granularity = _choice("granularity", ("week", "month"), "week")
    start, end = _range(granularity)
    current = wait_for_read_models()
    series = _read(lambda conn: report(conn, granularity, start, end))
    return jsonify(stamped({"granularity": granularity, "series": series}, current))


@blueprint.get("/v1/orders/repurchase")
@require("reader")
def repurchase() -> Response:
    reject_unknown({"from", "to"} | FRESHNESS)
    start, end = _range("day", limit=False)
    current = wait_for_read_models()
    body = _read(lambda conn: reports.repurchase(conn, start, end))
    return jsonify(stamped({"from": start.isoformat(), "to": end.isoformat(), **body}, current))


def _read(query: Callable[[Any], Any]) -> Any:
    with current_app.config["COHORTLINE"].read_engine.connect() as conn:
        return query(conn)


def _choice(name: str, choices: tuple[str, ...], default: str | None) -> Any:
    value = request.args.get(name) or default
    if value is not None and value not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}")
    return value


def _date(name: str) -> date:
    raw = request.args.get(name)
    if not raw:
        raise invalid(name, "required, as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, "must be a date as YYYY-MM-DD") from None


def _range(granularity: Granularity, limit: bool = True) -> tuple[date, date]:
    start, end = _date("from"), _date("to")
    if end < start:
        raise invalid("to", "must not be before from")
    if limit and sum(1 for _ in periods_between(granularity, start, end)) > MAX_PERIODS[granularity]:
        raise invalid("to", f"at most {MAX_PERIODS[granularity]} {granularity} periods per query")
    return start, end


def _periods(granularity: Granularity, start: date, end: date) -> int:
    raw = request.args.get("periods")
    span = sum(1 for _ in periods_between(granularity, start, end)) - 1
    if not raw:
        return span
    if not raw.isdigit() or int(raw) > MAX_PERIODS[granularity]:
        raise invalid("periods", f"must be an integer from 0 to {MAX_PERIODS[granularity]}")
    return int(raw)


def _filter_kind() -> str:
    raw = request.args.get("filter")
    if not raw:
        return "active"
    kind, _, value = raw.partition(":")
    if kind == "scene" and value in SCENES:
        return raw
    if kind == "tool" and 0 < len(value) <= 64:
        return raw
    raise invalid("filter", f"must be scene:<{'|'.join(SCENES)}> or tool:<tool name>")
