"""The service page: tickets, resolution and first-response hours, CSAT per period, and retention by
satisfaction, from GET /v1/service/satisfaction."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.e2e.dashboard.browser import choose, download_csv, figure, header, state, table, translated

SERIES = (
    "period",
    "opened",
    "resolved",
    "median_resolution_hours",
    "p90_resolution_hours",
    "median_first_response_hours",
    "ratings",
    "avg_score",
    "csat",
)
SERIES_HEADER = (
    "Period",
    "Tickets opened",
    "Tickets resolved",
    "Median resolution hours",
    "90th percentile resolution hours",
    "Median first-response hours",
    "Ratings",
    "Average score",
    "CSAT",
)
BUCKETS = ("bucket", "ratings", "mature", "retained_30d")
BUCKETS_HEADER = ("Score", "Ratings", "Mature ratings", "Retained 30 days after")


def _number(value: Any) -> str:
    """As the page's data-value writes it (JavaScript's String(number); null as empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def satisfaction(dashboard, period: dict[str, str], granularity: str) -> dict[str, Any]:
    return dashboard.api(
        "/v1/service/satisfaction", granularity=granularity, **{"from": period["from"], "to": period["to"]}
    )


def expected_figures(answer: dict[str, Any]) -> dict[str, str]:
    """The headline: tickets opened and resolved are sums of the API's per-period counts (each period
    counted whole); the ratings and their CSAT are those of the range, from retention_by_score's counts
    (ratings scoring 4-5 over all ratings)."""
    series, buckets = answer["series"], answer["retention_by_score"]
    ratings = sum(b["ratings"] for b in buckets)
    satisfied = sum(b["ratings"] for b in buckets if b["bucket"] == "4-5")
    return {
        "opened": str(sum(p["opened"] for p in series)),
        "resolved": str(sum(p["resolved"] for p in series)),
        "ratings": str(ratings),
        "csat": _number(satisfied / ratings if ratings else None),
    }


def page_figures(page) -> dict[str, str]:
    return {key: figure(page, key) for key in ("opened", "resolved", "ratings", "csat")}


def assert_shows(page, answer: dict[str, Any]) -> None:
    """Headline figures, both tables and their CSV exports equal the API's answer."""
    assert page_figures(page) == expected_figures(answer)
    rows = table(page, "series")
    assert rows == [[_number(p[key]) for key in SERIES] for p in answer["series"]]
    assert download_csv(page, "series")[1:] == rows
    buckets = table(page, "retention-table")
    assert buckets == [[_number(b[key]) for key in BUCKETS] for b in answer["retention_by_score"]]
    assert download_csv(page, "retention-table")[1:] == buckets
    assert state(page, "volume") == "ready"
    assert state(page, "hours") == "ready"
    assert state(page, "satisfaction") == "ready"
    # retention is drawn once some rating has matured (30 days before the data's latest time)
    mature = any(b["retained_30d"] is not None for b in answer["retention_by_score"])
    assert state(page, "retention") == ("ready" if mature else "empty")


def test_service_shows_the_api_answer_by_week(dashboard, browse):
    page = browse("/service")
    period = page.evaluate("window.Cohortline.config.period")
    assert period["preset"] == "last_90"
    assert page.locator('select[name="granularity"]').input_value() == "week"
    answer = satisfaction(dashboard, period, "week")
    assert answer["granularity"] == "week"
    assert_shows(page, answer)
    assert int(figure(page, "opened")) > 0 and figure(page, "csat") != ""
    assert state(page, "retention") == "ready"
    assert header(page, "series") == list(SERIES_HEADER)
    assert header(page, "retention-table") == list(BUCKETS_HEADER)
    assert [row[0] for row in table(page, "retention-table")] == ["1-2", "3", "4-5"]
    dashboard.screenshot(page, "service")


def test_the_granularity_and_range_change_the_url_and_the_figures(dashboard, browse):
    page = browse("/service")
    weekly = table(page, "series")

    url = choose(page, "granularity", "month")
    assert parse_qs(urlsplit(url).query)["granularity"] == ["month"]
    period = page.evaluate("window.Cohortline.config.period")
    monthly = satisfaction(dashboard, period, "month")
    assert_shows(page, monthly)
    assert table(page, "series") != weekly
    assert all(len(row[0]) == len("2025-03") for row in table(page, "series"))

    before = page_figures(page)
    url = choose(page, "range", "last_30")
    query = parse_qs(urlsplit(url).query)
    assert query["range"] == ["last_30"] and query["granularity"] == ["month"]
    period = page.evaluate("window.Cohortline.config.period")
    assert period["preset"] == "last_30"
    shorter = satisfaction(dashboard, period, "month")
    assert_shows(page, shorter)
    assert page_figures(page)["ratings"] != before["ratings"]


def test_a_custom_range_counts_its_ratings_and_whole_periods(dashboard, browse):
    page = browse("/service?range=custom&from=2025-03-12&to=2025-04-09&granularity=week")
    answer = satisfaction(dashboard, {"from": "2025-03-12", "to": "2025-04-09"}, "week")
    assert answer["series"][0]["period"] == "2025-03-10"  # the week the range starts in, counted whole
    assert_shows(page, answer)


def test_service_in_chinese_shows_the_same_figures(dashboard, browse):
    page = browse("/service?granularity=month", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Service", "zh") != "Service"
    labels = [translated(label, "zh") for label in SERIES_HEADER]
    assert header(page, "series") == labels
    assert labels[0] == translated("Period", "zh") != "Period"
    assert header(page, "retention-table") == [translated(label, "zh") for label in BUCKETS_HEADER]
    period = page.evaluate("window.Cohortline.config.period")
    assert_shows(page, satisfaction(dashboard, period, "month"))
    dashboard.screenshot(page, "service-zh")
