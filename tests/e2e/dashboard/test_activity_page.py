"""The Activity page: active users per day, week or month (optionally for one scene or tool), stickiness
per month, and lifecycle and frequency per week or month. What it shows equals the API's answer to
the same query, its controls live in the URL, and lifecycle and frequency fall back to weeks (and say
so) when active users are counted per day."""

from __future__ import annotations

import math
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
TABLES = ("active-users-table", "stickiness-table", "lifecycle-table", "frequency-table")
WEEKLY = "Shown by week: lifecycle and frequency take weeks or months."


def number(value: float | int | None) -> str:
    """A number as the page keeps it in data-value (JavaScript's String(number); null as empty)."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def period(page: Page) -> dict[str, str]:
    shown = page.evaluate("window.Cohortline.config.period")
    return {"from": shown["from"], "to": shown["to"]}


def expected(
    dashboard: Dashboard, span: dict[str, str], granularity: str, filter_: str = ""
) -> dict[str, Any]:
    """The headline figures and every table's rows, from the API's answers to the page's queries."""
    longer = "week" if granularity == "day" else granularity
    active = dashboard.api(
        "/v1/activity/active-users",
        granularity=granularity,
        **span,
        **({"filter": filter_} if filter_ else {}),
    )["series"]
    sticky = dashboard.api("/v1/activity/stickiness", **span)["series"]
    lifecycle = dashboard.api("/v1/activity/lifecycle", granularity=longer, **span)["series"]
    frequency = dashboard.api("/v1/activity/frequency", granularity=longer, **span)["series"]

    months = [p["stickiness"] for p in sticky if p["mau"] > 0]
    # As the page rounds the mean of the months with active users (Math.round to 4 places).
    average = math.floor(sum(months) / len(months) * 10000 + 0.5) / 10000 if months else None
    most = max((int(k) for p in frequency for k in p["days"]), default=0)
    return {
        "figures": {
            "latest_active_users": number(active[-1]["users"]),
            "average_stickiness": number(average),
        },
        "active-users-table": [[p["period"], number(p["users"])] for p in active],
        "stickiness-table": [
            [p["period"], number(p["avg_dau"]), number(p["mau"]), number(p["stickiness"])] for p in sticky
        ],
        "lifecycle-table": [
            [p["period"], *(number(p[k]) for k in ("new", "returning", "resurrecting", "dormant"))]
            for p in lifecycle
        ],
        "frequency-table": [
            [
                p["period"],
                number(sum(p["days"].values())),
                *(number(p["days"].get(str(k), 0)) for k in range(1, most + 1)),
            ]
            for p in frequency
        ],
        "lifecycle": lifecycle,
    }


def shown(page: Page) -> dict[str, Any]:
    return {
        "figures": {key: figure(page, key) for key in ("latest_active_users", "average_stickiness")},
        **{name: table(page, name) for name in TABLES},
    }


def assert_shows(page: Page, answer: dict[str, Any]) -> None:
    page_answer = shown(page)
    assert page_answer["figures"] == answer["figures"]
    for name in TABLES:
        assert page_answer[name] == answer[name], name


def notes(page: Page, section: str) -> list[str]:
    return page.locator(f'[data-section="{section}"] [data-note]').all_inner_texts()


def test_activity_shows_the_api_figures_per_day_with_weekly_lifecycle(dashboard: Dashboard, browse: Browse):
    page = browse("/activity")
    assert page.evaluate("window.Cohortline.config.period.preset") == "last_90"
    assert page.locator('select[name="granularity"]').input_value() == "day"
    span = period(page)
    answer = expected(dashboard, span, "day")
    assert_shows(page, answer)
    assert answer["figures"]["latest_active_users"] != ""
    assert float(answer["figures"]["average_stickiness"]) > 0
    for section in ("active-users", "stickiness", "lifecycle", "frequency", "headline", *TABLES):
        assert state(page, section) == "ready", section

    # Lifecycle and frequency take no days: they are weekly, and say so.
    assert all(len(row[0]) == 10 for row in answer["lifecycle-table"])
    assert WEEKLY in notes(page, "lifecycle") and WEEKLY in notes(page, "frequency")
    assert WEEKLY not in notes(page, "active-users")
    # Dormant users keep the API's value (a count of users leaving, negative in the answer).
    assert [row[4] for row in table(page, "lifecycle-table")] == [
        number(p["dormant"]) for p in answer["lifecycle"]
    ]
    assert any(p["dormant"] != 0 for p in answer["lifecycle"])

    for name in TABLES:
        exported = download_csv(page, name)
        assert exported[0] == header(page, name)
        assert exported[1:] == table(page, name), name
    dashboard.screenshot(page, "activity")


def test_activity_controls_change_the_url_and_the_figures(dashboard: Dashboard, browse: Browse):
    page = browse("/activity")
    daily = expected(dashboard, period(page), "day")

    url = choose(page, "granularity", "month")
    assert query(page)["granularity"] == "month", url
    span = period(page)
    monthly = expected(dashboard, span, "month")
    assert_shows(page, monthly)
    assert monthly["figures"]["latest_active_users"] != daily["figures"]["latest_active_users"]
    assert monthly["lifecycle-table"] != daily["lifecycle-table"]
    assert notes(page, "lifecycle") == [translated("Dormant users are drawn below zero.", "en")]

    # A scene narrows active users only.
    with page.expect_navigation():
        page.fill('form[data-controls] input[name="filter"]', " scene:shopping ")
        page.press('form[data-controls] input[name="filter"]', "Enter")
    page.wait_for_selector("body[data-ready=true]")
    assert query(page) == {"range": "last_90", "granularity": "month", "filter": "scene:shopping"}
    shopping = expected(dashboard, span, "month", "scene:shopping")
    assert_shows(page, shopping)
    assert shopping["active-users-table"] != monthly["active-users-table"]
    assert shopping["stickiness-table"] == monthly["stickiness-table"]
    note = page.locator('[data-section="headline"] .figure .note').first.inner_text()
    assert "scene:shopping" in note

    # The range too.
    choose(page, "range", "last_30")
    assert query(page)["range"] == "last_30" and query(page)["filter"] == "scene:shopping"
    assert_shows(page, expected(dashboard, period(page), "month", "scene:shopping"))


def test_an_unknown_tool_is_refused_and_the_known_ones_offered(dashboard: Dashboard, browse: Browse):
    page = browse("/activity?granularity=week&filter=tool:no-such-tool", allow=(r"status of 422",))
    assert state(page, "active-users") == "error" and state(page, "active-users-table") == "error"
    message = page.locator('[data-section="active-users"] .state.error').inner_text()
    assert "unknown_feature" in message
    # What does not depend on the filter still shows, and the known names are offered.
    assert state(page, "stickiness") == "ready" and state(page, "lifecycle-table") == "ready"
    answer = expected(dashboard, period(page), "week")
    assert figure(page, "average_stickiness") == answer["figures"]["average_stickiness"]
    assert figure(page, "latest_active_users") == ""
    offered = page.locator("datalist[data-filters] option").evaluate_all("o => o.map(x => x.value)")
    assert "tool:check_in" in offered and "scene:shopping" in offered


def test_activity_in_chinese_shows_translated_labels_and_the_same_figures(
    dashboard: Dashboard, browse: Browse
):
    page = browse("/activity?granularity=week", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Activity", "zh") != "Activity"
    heading = page.locator('[data-section="active-users"] h2').inner_text()
    assert heading == translated("Active users", "zh") != "Active users"
    for section, title in (
        ("stickiness-table", "Stickiness per month"),
        ("lifecycle-table", "Lifecycle per period"),
        ("frequency", "Frequency: users by active days"),
    ):
        assert page.locator(f'[data-section="{section}"] h2').inner_text() == translated(title, "zh")
    labels = ("Period", "New", "Returning", "Resurrecting", "Dormant")
    assert header(page, "lifecycle-table") == [translated(label, "zh") for label in labels]
    assert header(page, "lifecycle-table")[0] != "Period"
    assert_shows(page, expected(dashboard, period(page), "week"))
    assert notes(page, "lifecycle") == [translated("Dormant users are drawn below zero.", "zh")]
    dashboard.screenshot(page, "activity-zh")
