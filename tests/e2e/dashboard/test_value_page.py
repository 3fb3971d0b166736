"""The Value page: revenue per period and currency, LTV by cohort per currency, and repurchase over the
range. What it shows equals the API's answer to the same query (money as the API's decimal strings),
its controls live in the URL, and LTV falls back to weeks (and says so) when revenue is per day."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page

from tests.e2e.dashboard.browser import (
    choose,
    download_csv,
    figure,
    header,
    state,
    table,
    translated,
)
from tests.e2e.dashboard.conftest import Dashboard

Browse = Callable[..., Page]
TABLES = ("revenue-table", "ltv-table")
REPURCHASE = (
    "customers",
    "repeat_customers",
    "repurchase_rate",
    "median_days_between_orders",
    "p90_days_between_orders",
)
WEEKLY = "LTV is shown by week: it takes weeks or months."


def value(v: Any) -> str:
    """A value as the page keeps it in data-value: money the API's string, numbers as JavaScript
    writes them, null as empty."""
    if v is None:
        return ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def period(page: Page) -> dict[str, str]:
    shown = page.evaluate("window.Cohortline.config.period")
    return {"from": shown["from"], "to": shown["to"]}


def revenue_rows(series: list[dict[str, Any]]) -> list[list[str]]:
    """One row per period and currency; a period without money one row without a currency."""
    rows = []
    for p in series:
        if not p["currencies"]:
            rows.append([p["period"], "", "", "", "", "", "", value(p["active_users"])])
        for currency, f in sorted(p["currencies"].items()):
            rows.append(
                [
                    p["period"],
                    currency,
                    f["paid"],
                    f["refunded"],
                    f["net"],
                    value(f["orders_paid"]),
                    value(f["arpu"]),
                    value(p["active_users"]),
                ]
            )
    return rows


def ltv_rows(cohorts: list[dict[str, Any]]) -> list[list[str]]:
    """One row per cohort and currency, the cumulative amounts at offsets 0.. (missing cells empty)."""
    longest = max((len(c["complete"]) for c in cohorts), default=0)
    rows = []
    for c in cohorts:
        amounts = sorted(c["currencies"].items()) or [("", [])]
        for currency, cells in amounts:
            padded = [cells[k] if k < len(cells) else "" for k in range(longest)]
            rows.append([c["cohort"], currency, value(c["size"]), *padded])
    return rows


def expected(
    dashboard: Dashboard, span: dict[str, str], granularity: str, cohort: str = "first_seen"
) -> dict[str, Any]:
    ltv_granularity = "week" if granularity == "day" else granularity
    repurchase = dashboard.api("/v1/orders/repurchase", **span)
    revenue = dashboard.api("/v1/value/revenue", granularity=granularity, **span)
    ltv = dashboard.api("/v1/value/ltv", granularity=ltv_granularity, cohort=cohort, **span)
    return {
        "figures": {key: value(repurchase[key]) for key in REPURCHASE},
        "revenue-table": revenue_rows(revenue["series"]),
        "ltv-table": ltv_rows(ltv["cohorts"]),
        "ltv": ltv,
    }


def assert_shows(page: Page, answer: dict[str, Any]) -> None:
    assert {key: figure(page, key) for key in REPURCHASE} == answer["figures"]
    for name in TABLES:
        assert table(page, name) == answer[name], name


def notes(page: Page, section: str) -> list[str]:
    return page.locator(f'[data-section="{section}"] [data-note]').all_inner_texts()


def test_value_shows_the_api_figures(dashboard: Dashboard, browse: Browse):
    page = browse("/value")
    assert page.evaluate("window.Cohortline.config.period.preset") == "last_90"
    assert page.locator('select[name="granularity"]').input_value() == "week"
    assert page.locator('select[name="cohort"]').input_value() == "first_seen"
    answer = expected(dashboard, period(page), "week")
    assert_shows(page, answer)
    assert int(answer["figures"]["customers"]) > 0 and answer["ltv"]["cohorts"]
    for section in ("repurchase", "revenue", "ltv", *TABLES):
        assert state(page, section) == "ready", section
    # Money keeps the API's decimal strings; the offsets not yet complete are marked.
    money = [cell for row in table(page, "revenue-table") for cell in row[2:5] if cell]
    assert money and all(re.fullmatch(r"-?\d+\.\d{2}", cell) for cell in money)
    incomplete = sum(c["complete"].count(False) for c in answer["ltv"]["cohorts"])
    assert page.locator('[data-section="ltv-table"] td.incomplete').count() == incomplete > 0
    assert WEEKLY not in notes(page, "ltv")

    for name in TABLES:
        exported = download_csv(page, name)
        assert exported[0] == header(page, name)
        assert exported[1:] == table(page, name), name
    dashboard.screenshot(page, "value")


def test_value_controls_change_the_url_and_the_figures(dashboard: Dashboard, browse: Browse):
    page = browse("/value")
    weekly = expected(dashboard, period(page), "week")

    choose(page, "granularity", "month")
    assert query(page) == {"range": "last_90", "granularity": "month", "cohort": "first_seen"}
    span = period(page)
    monthly = expected(dashboard, span, "month")
    assert_shows(page, monthly)
    assert monthly["revenue-table"] != weekly["revenue-table"]
    assert monthly["ltv-table"] != weekly["ltv-table"]

    choose(page, "cohort", "first_order")
    assert query(page)["cohort"] == "first_order" and query(page)["granularity"] == "month"
    first_order = expected(dashboard, span, "month", "first_order")
    assert_shows(page, first_order)
    assert first_order["ltv-table"] != monthly["ltv-table"]

    # Revenue per day; LTV takes no days, so it is weekly and says so.
    choose(page, "granularity", "day")
    daily = expected(dashboard, span, "day", "first_order")
    assert_shows(page, daily)
    assert daily["ltv"]["granularity"] == "week" and daily["ltv"]["cohorts"]
    assert WEEKLY in notes(page, "ltv")

    # A narrower range changes the repurchase figures too.
    choose(page, "range", "last_30")
    narrower = expected(dashboard, period(page), "day", "first_order")
    assert_shows(page, narrower)
    assert narrower["figures"] != daily["figures"]


def test_a_custom_range_is_kept_in_the_url(dashboard: Dashboard, browse: Browse):
    page = browse("/value?range=custom&from=2025-03-03&to=2025-03-30&granularity=month")
    assert page.locator('input[name="from"]').input_value() == "2025-03-03"
    assert_shows(page, expected(dashboard, {"from": "2025-03-03", "to": "2025-03-30"}, "month"))


def test_value_in_chinese_shows_translated_labels_and_the_same_figures(dashboard: Dashboard, browse: Browse):
    page = browse("/value?granularity=month", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Value", "zh") != "Value"
    rate = page.locator('[data-figure="repurchase_rate"]').locator("xpath=../dt").inner_text()
    assert rate == translated("Repurchase rate", "zh") != "Repurchase rate"
    for section, title in (
        ("repurchase", "Repurchase over the range"),
        ("revenue-table", "Revenue per period and currency"),
        ("ltv", "LTV by cohort: cumulative net revenue per member"),
    ):
        assert page.locator(f'[data-section="{section}"] h2').inner_text() == translated(title, "zh")
    labels = ("Period", "Currency", "Paid", "Refunded", "Net revenue", "Paid orders", "ARPU", "Active users")
    assert header(page, "revenue-table") == [translated(label, "zh") for label in labels]
    assert header(page, "revenue-table")[0] != "Period"
    assert_shows(page, expected(dashboard, period(page), "month"))
    dashboard.screenshot(page, "value-zh")
