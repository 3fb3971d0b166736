"""Every analytics answer of the read models compared with the reference definitions over the same
history; shared by the property tests and the tests that project a stored log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from projections.activity import active_users, frequency, lifecycle_counts, stickiness
from projections.campaigns import campaign_effect, campaign_list
from projections.features import feature_impact, feature_report
from projections.orders import repurchase
from projections.overview import overview
from projections.records import EventRecord
from projections.retention import retention
from projections.rfm import present_rfm, rfm_cuts
from projections.service import satisfaction
from projections.value import ltv, revenue
from tests import reference
from tests.properties import as_reference, user_documents

START, END = date(2011, 1, 1), date(2011, 4, 30)
FILTERS = (
    "scene:social",
    "scene:shopping",
    "scene:content",
    "tool:check_in",
    "tool:wishlist",
    "tool:live_stream",
    "event:Video Played",
    "event:视频播放",
)


GRANULARITY_PERIODS = (("day", 20), ("week", 8), ("month", 4))
BREAKDOWNS = (None, "channel", "country")
COHORT_FEATURES = ("tool:check_in", "scene:social")
RETENTION_CASES = [
    (granularity, periods, definition, returns, mode, breakdown)
    for granularity, periods in GRANULARITY_PERIODS
    for definition in ("first_seen", "signup", "first_order")
    for returns in ("active", "order")
    for mode in ("on", "on_or_after")
    for breakdown in BREAKDOWNS
]
"""Every combination of retention parameters (with the periods asked for each granularity)..."""
FEATURE_PAIRS = [
    (definition, returns)
    for definition in ("first_seen", "signup", "first_order", *COHORT_FEATURES)
    for returns in ("active", "order", *COHORT_FEATURES)
    if definition in COHORT_FEATURES or returns in COHORT_FEATURES
]
RETENTION_CASES += [
    (granularity, periods, definition, returns, mode, BREAKDOWNS[n % len(BREAKDOWNS)])
    for n, ((granularity, periods), (definition, returns), mode) in enumerate(
        (g, pair, mode)
        for g in GRANULARITY_PERIODS
        for pair in FEATURE_PAIRS
        for mode in ("on", "on_or_after")
    )
]
"""...and with a feature as the cohort, the return or both (each with one of the breakdowns)."""


def assert_read_models_equal_reference(
    engine: Engine,
    events: Iterable[EventRecord | reference.Event],
    start: date = START,
    end: date = END,
    retention_cases: Iterable[tuple[Any, ...]] = RETENTION_CASES,
) -> None:
    """Every report read from the read models of `engine` equals the definitions over `events`
    (records read from the log, or the reference's events as the sender wrote them); retention
    for `retention_cases` (a property test draws some of them per history)."""
    history = as_reference(events)
    watermark = reference.watermark_of(history)
    with engine.connect() as conn:
        _assert_activity_equal(conn, history, start, end)
        # a range that starts and ends inside a week and a month
        _assert_activity_equal(conn, history, start + timedelta(days=4), start + timedelta(days=46))
        _assert_retention_equal(conn, history, start, end, watermark, retention_cases)
        _same(rfm_of_every_customer(conn, watermark), reference.rfm(history, watermark), "rfm")
        for first, last in ((start, end), _month_after(start)):
            asked = (first, last)
            _same(repurchase(conn, *asked), reference.repurchase(history, *asked), "repurchase", asked)
        _assert_value_equal(conn, history, start, end, watermark)
        _assert_levers_equal(conn, history, start, end, watermark)
        _assert_features_equal(conn, history, start, end, watermark)


def _same(got: Any, want: Any, *asked: Any) -> None:
    """`got` (the read models) equals `want` (the reference); says both when not."""
    assert got == want, f"{asked}:\n read models: {got}\n reference:   {want}"


def _month_after(day: date) -> tuple[date, date]:
    first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _assert_activity_equal(conn: Connection, history: list[reference.Event], start: date, end: date) -> None:
    for granularity in ("day", "week", "month"):
        for kind in ("active", *FILTERS):
            filter_ = None if kind == "active" else kind
            got = active_users(conn, granularity, start, end, kind)
            _same(got, reference.active_users(history, granularity, start, end, filter_), granularity, kind)
    for granularity in ("week", "month"):
        asked = (granularity, start, end)
        _same(frequency(conn, *asked), reference.frequency(history, *asked), "frequency", asked)
        _same(lifecycle_counts(conn, *asked), reference.lifecycle(history, *asked), "lifecycle", asked)
    asked = (max(start, date(start.year, start.month, 10)), end)
    _same(stickiness(conn, *asked), reference.stickiness(history, *asked), "stickiness", asked)


def _assert_value_equal(
    conn: Connection, history: list[reference.Event], start: date, end: date, watermark: datetime
) -> None:
    for granularity in ("day", "week", "month"):
        asked = (granularity, start, end)
        _same({"series": revenue(conn, *asked)}, reference.revenue(history, *asked), "revenue", asked)
    for granularity, periods in (("week", 6), ("month", None)):
        for definition in ("first_seen", "signup", "first_order"):
            asked = (granularity, definition, start, end, periods, watermark)
            _same({"cohorts": ltv(conn, *asked)}, reference.ltv(history, *asked), "ltv", asked)


def _assert_levers_equal(
    conn: Connection, history: list[reference.Event], start: date, end: date, watermark: datetime
) -> None:
    """Campaigns, service and the overview (metrics.md "Campaigns", "Customer service", "Overview")."""
    listed = reference.campaigns(history)
    _same({"campaigns": campaign_list(conn)}, listed, "campaigns")
    for campaign_id in [c["campaign_id"] for c in listed["campaigns"]] + ["never-declared"]:
        want = reference.campaign_effect(history, campaign_id, watermark)
        _same(campaign_effect(conn, campaign_id, watermark), want, "effect", campaign_id)
    for granularity in ("week", "month"):
        asked = (granularity, start, end, watermark)
        _same(satisfaction(conn, *asked), reference.satisfaction(history, *asked), "satisfaction", asked)
    for asked in (
        (start, end, watermark),
        (start + timedelta(days=20), start + timedelta(days=46), watermark),
    ):
        _same(overview(conn, *asked), reference.overview(history, *asked), "overview", asked)


def _assert_features_equal(
    conn: Connection, history: list[reference.Event], start: date, end: date, watermark: datetime
) -> None:
    """The feature report over two ranges, and every feature's impact (metrics.md "Scenes and tools")."""
    for asked in (
        (start, end, watermark),
        (start + timedelta(days=9), start + timedelta(days=40), watermark),
    ):
        _same(feature_report(conn, *asked), reference.features(history, *asked), "features", asked)
    used = {
        row["feature"] for row in reference.features(history, date(1, 1, 1), date(9999, 12, 30), watermark)
    }
    for feature in sorted(used | {"tool:never-used"}):
        asked = (feature, start, end, watermark)
        _same(feature_impact(conn, *asked), reference.feature_impact(history, *asked), "impact", asked)


def _assert_retention_equal(
    conn: Connection,
    history: list[reference.Event],
    start: date,
    end: date,
    watermark: datetime,
    cases: Iterable[tuple[Any, ...]],
) -> None:
    for granularity, periods, definition, returns, mode, breakdown in cases:
        asked = (granularity, definition, returns, mode, start, end, periods, watermark, breakdown)
        _same(retention(conn, *asked), reference.retention(history, *asked), asked)


def rfm_of_every_customer(conn: Connection, watermark: datetime) -> dict[str, dict[str, Any]]:
    """user → RFM as the API presents it, for every user with an order."""
    cuts = rfm_cuts(conn)
    found = {}
    for user_id, document in user_documents(conn).items():
        rfm = present_rfm(document, watermark, cuts)
        if rfm is not None:
            found[user_id] = rfm
    return found
