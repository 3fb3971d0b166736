"""The Users page (GET /v1/users/search, a page at a time) and a user's page (GET /v1/users/<id>, and
for auditors only the user's events from /v1/audit): what they show equals the API's answer, their
controls live in the URL, readers never see nor ask for the audit trail, and after an erasure no
personal value reaches the page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page

from domain.model import ERASED
from tests.e2e.dashboard.browser import (
    choose,
    download_csv,
    fill,
    header,
    state,
    table,
    translated,
    wait_ready,
)
from tests.e2e.dashboard.conftest import PERSONAL_USER, PERSONAL_VALUES, Dashboard
from tests.processes import wait_until

Browse = Callable[..., Page]
SEARCH = "/v1/users/search"


def value(v: Any) -> str:
    """A value as the page keeps it in data-value (null as empty)."""
    return "" if v is None else str(v)


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def search_table(users: list[dict[str, Any]], lang: str = "en") -> tuple[list[str], list[list[str]]]:
    """The header and rows the results table shows for these users."""
    currencies = sorted({c for user in users for c in user["net_revenue"]})
    revenue = translated("Net revenue {currency}", lang)
    labels = [
        translated(label, lang) for label in ("User id", "Lifecycle", "RFM segment", "Country", "Orders")
    ]
    labels += [revenue.replace("{currency}", c) for c in currencies] + [translated("Last active", lang)]
    rows = [
        [
            user["user_id"],
            value(user["lifecycle"]),
            value(user["segment"]),
            value(user["country"]),
            value(user["orders"]),
            *[value(user["net_revenue"].get(c)) for c in currencies],
            value(user["last_active_at"]),
        ]
        for user in users
    ]
    return labels, rows


def assert_results(page: Page, dashboard: Dashboard, lang: str = "en", **params: Any) -> dict[str, Any]:
    """The results table equals the API's answer to the same search; the answer."""
    answer = dashboard.api(SEARCH, **params)
    labels, rows = search_table(answer["users"], lang)
    if rows:
        assert state(page, "results") == "ready"
        assert header(page, "results") == labels
        assert table(page, "results") == rows
    else:
        assert state(page, "results") == "empty"
    return answer


def resources(page: Page) -> list[str]:
    """Every URL the page fetched."""
    return page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")


def figures(page: Page) -> dict[str, str]:
    """Every headline value of the page by its key (data-figure → data-value)."""
    return page.locator("[data-figure]").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.figure, e.dataset.value]))"
    )


def user_figures(user: dict[str, Any]) -> dict[str, str]:
    """The values a user's page shows for this user state."""
    shown = {key: value(user[key]) for key in ("orders", "points", "open_tickets")}
    if user["net_revenue"]:
        shown |= {f"net_revenue:{c}": amount for c, amount in user["net_revenue"].items()}
    else:
        shown["net_revenue"] = ""
    if user["rfm"]:
        rfm = user["rfm"]
        keys = ("segment", "r", "f", "m", "recency_days", "frequency", "monetary")
        shown |= {f"rfm_{key}": value(rfm[key]) for key in keys}
    for key in (
        "first_seen_at", "signup_at", "first_order_at", "last_order_at", "last_active_at", "lifecycle",
        "resurrected_on", "segment", "tier", "country", "channel", "last_position",
    ):  # fmt: skip
        shown[key] = value(user[key])
    return shown


def event_rows(events: list[dict[str, Any]]) -> list[list[str]]:
    """The event history's rows: the data as compact JSON, exactly as the API gives it."""
    return [
        [
            str(e["position"]),
            str(e["version"]),
            e["type"],
            e["occurred_at"],
            e["recorded_at"],
            json.dumps(e["data"], separators=(",", ":"), ensure_ascii=False),
        ]
        for e in events
    ]


EVENT_COLUMNS = ("Position", "Version", "Type", "Occurred at", "Recorded at", "Data")


def a_customer(dashboard: Dashboard) -> str:
    """A user with orders (so with RFM scores)."""
    return dashboard.api(SEARCH, min_orders=2, size=1)["users"][0]["user_id"]


def caught_up(dashboard: Dashboard, position: int) -> None:
    def check() -> bool:
        status = dashboard.api("/v1/status")
        return status["head"] >= position and all(p["lag_events"] == 0 for p in status["projections"])

    wait_until(check, 120, f"the read models to apply position {position}")


# Users


def test_users_lists_the_search_answer_with_links_and_csv(dashboard: Dashboard, browse: Browse) -> None:
    page = browse("/users")
    answer = assert_results(page, dashboard, size=20)
    assert len(answer["users"]) == 20
    first = answer["users"][0]["user_id"]
    link = page.locator('[data-section="results"] tbody tr').first.locator("a")
    assert link.inner_text() == first
    assert urlsplit(link.get_attribute("href") or "").path == f"/users/{first}"
    labels, rows = search_table(answer["users"])
    assert download_csv(page, "results") == [labels, *rows]
    dashboard.screenshot(page, "users")

    with page.expect_navigation():
        link.click()
    wait_ready(page)
    assert urlsplit(page.url).path == f"/users/{first}"
    assert figures(page)["orders"] == value(answer["users"][0]["orders"])


def test_users_controls_live_in_the_url_and_change_the_results(dashboard: Dashboard, browse: Browse) -> None:
    page = browse("/users")
    choose(page, "lifecycle", "active")
    assert query(page) == {"lifecycle": "active", "size": "20"}
    assert assert_results(page, dashboard, lifecycle="active", size=20)["users"]

    choose(page, "segment", "champions")
    assert query(page) == {"lifecycle": "active", "segment": "champions", "size": "20"}
    champions = assert_results(page, dashboard, lifecycle="active", segment="champions", size=20)["users"]
    assert champions and all(u["segment"] == "champions" and u["lifecycle"] == "active" for u in champions)

    country = champions[0]["country"]
    fill(page, "country", country.lower())  # typed in lower case, sent as the API's upper case
    assert query(page)["country"] == country
    assert assert_results(page, dashboard, lifecycle="active", segment="champions", country=country, size=20)[
        "users"
    ]

    fill(page, "min_orders", "5")
    assert query(page)["min_orders"] == "5"
    many = assert_results(
        page, dashboard, lifecycle="active", segment="champions", country=country, min_orders=5, size=20
    )["users"]
    assert all(u["orders"] >= 5 for u in many)

    page = browse("/users")
    prefix = dashboard.api(SEARCH, size=1)["users"][0]["user_id"][:3]
    fill(page, "q", prefix)
    assert query(page) == {"q": prefix, "size": "20"}
    found = assert_results(page, dashboard, q=prefix, size=20)["users"]
    assert found and all(u["user_id"].startswith(prefix) for u in found)

    choose(page, "size", "50")
    assert query(page) == {"q": prefix, "size": "50"}
    assert_results(page, dashboard, q=prefix, size=50)


def test_next_page_follows_the_api_cursor(dashboard: Dashboard, browse: Browse) -> None:
    page = browse("/users?size=20")
    first = dashboard.api(SEARCH, size=20)
    assert first["next"]
    assert not page.locator("[data-pager] [data-first]").is_visible()
    with page.expect_navigation():
        page.click("[data-pager] [data-next]")
    wait_ready(page)
    assert query(page) == {"size": "20", "after": first["next"]}
    second = assert_results(page, dashboard, size=20, after=first["next"])
    assert {u["user_id"] for u in second["users"]}.isdisjoint(u["user_id"] for u in first["users"])

    first_page = page.locator("[data-pager] [data-first]")
    assert first_page.is_visible()
    assert "after" not in (first_page.get_attribute("href") or "")

    choose(page, "lifecycle", "at_risk")  # a new search starts again at its first page
    assert query(page) == {"lifecycle": "at_risk", "size": "20"}
    assert_results(page, dashboard, lifecycle="at_risk", size=20)


def test_users_empty_and_bad_parameters(dashboard: Dashboard, browse: Browse) -> None:
    page = browse("/users?q=no-such-user-anywhere")
    assert dashboard.api(SEARCH, q="no-such-user-anywhere")["users"] == []
    assert state(page, "results") == "empty"
    assert not page.locator("[data-pager] [data-next]").is_visible()

    for bad in ({"min_orders": "-1"}, {"country": "GBR"}, {"after": "not-a-cursor"}):
        response = dashboard.get(SEARCH, **bad)
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        name, given = next(iter(bad.items()))
        page = browse(f"/users?{name}={given}", allow=(r"status of 400",))
        assert state(page, "results") == "error"
        assert message in page.locator('[data-section="results"] .state.error').inner_text()


def test_users_page_in_chinese(dashboard: Dashboard, browse: Browse) -> None:
    page = browse("/users?lifecycle=active", lang="zh")
    assert page.locator("h1").inner_text() == translated("Users", "zh") != "Users"
    assert_results(page, dashboard, lang="zh", lifecycle="active", size=20)
    lifecycle = page.locator('form[data-controls] select[name="lifecycle"] option:checked').inner_text()
    assert lifecycle == translated("Active", "zh")
    assert page.locator('[data-section="results"] h2').inner_text() == translated(
        "Users, most recently active first", "zh"
    )
    dashboard.screenshot(page, "users-zh")


# A user's page


def test_user_page_for_a_reader_shows_the_state_and_no_audit(dashboard: Dashboard, browse: Browse) -> None:
    user_id = a_customer(dashboard)
    page = browse(f"/users/{user_id}")
    user = dashboard.api(f"/v1/users/{user_id}")
    assert figures(page) == user_figures(user)
    for section in ("value", "rfm", "state"):
        assert state(page, section) == "ready"
    assert page.locator('[data-section="events"]').count() == 0
    assert not any("/v1/audit" in url for url in resources(page))
    assert any(f"/v1/users/{user_id}" in url for url in resources(page))
    assert dashboard.get(f"/v1/audit/streams/user/{user_id}/events", "reader").status_code == 403
    dashboard.screenshot(page, "user-reader")


def test_user_without_orders_has_no_rfm(dashboard: Dashboard, browse: Browse) -> None:
    users = dashboard.api(SEARCH, size=100)["users"]
    user_id = next(u["user_id"] for u in users if u["rfm"] is None)
    page = browse(f"/users/{user_id}")
    assert figures(page) == user_figures(dashboard.api(f"/v1/users/{user_id}"))
    assert state(page, "rfm") == "empty"
    assert state(page, "value") == "ready"


def test_an_auditor_sees_the_event_history(dashboard: Dashboard, browse: Browse) -> None:
    user_id = a_customer(dashboard)
    page = browse(f"/users/{user_id}", role="auditor")
    events = dashboard.api(f"/v1/audit/streams/user/{user_id}/events", "auditor")["events"]
    assert figures(page) == user_figures(dashboard.api(f"/v1/users/{user_id}"))
    assert state(page, "events") == "ready"
    assert header(page, "events") == list(EVENT_COLUMNS)
    rows = event_rows(events)
    assert table(page, "events") == rows
    assert download_csv(page, "events") == [list(EVENT_COLUMNS), *rows]
    dashboard.screenshot(page, "user-auditor")


def test_an_unknown_user_says_so(dashboard: Dashboard, browse: Browse) -> None:
    missing = dashboard.get("/v1/users/no-such-user")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_found"
    for role in ("reader", "auditor"):
        page = browse("/users/no-such-user", role=role, allow=(r"status of 404",))
        assert page.locator("[data-unknown]").is_visible()
        for section in ("value", "rfm", "state"):
            assert state(page, section) == "empty"
        assert not any("/v1/audit" in url for url in resources(page))
    assert state(page, "events") == "empty"


def test_user_page_in_chinese(dashboard: Dashboard, browse: Browse) -> None:
    user_id = a_customer(dashboard)
    page = browse(f"/users/{user_id}", lang="zh", role="auditor")
    assert figures(page) == user_figures(dashboard.api(f"/v1/users/{user_id}"))
    assert page.locator('[data-section="value"] h2').inner_text() == translated("Orders and value", "zh")
    assert page.locator('[data-figure="orders"]').locator("xpath=..").locator(
        "dt"
    ).inner_text() == translated("Orders", "zh")
    assert header(page, "events") == [translated(label, "zh") for label in EVENT_COLUMNS]
    events = dashboard.api(f"/v1/audit/streams/user/{user_id}/events", "auditor")["events"]
    assert table(page, "events") == event_rows(events)
    dashboard.screenshot(page, "user-zh")


def test_after_erasure_no_personal_value_reaches_the_page(dashboard: Dashboard, browse: Browse) -> None:
    """Last in this file: the erasure cannot be undone."""
    stream = f"/v1/audit/streams/user/{PERSONAL_USER}/events"
    before = dashboard.api(stream, "auditor")["events"]
    if not any(e["type"] == "PersonalDataErased" for e in before):
        page = browse(f"/users/{PERSONAL_USER}", role="auditor")
        assert table(page, "events") == event_rows(before)
        content = page.content()
        assert all(v in content for v in PERSONAL_VALUES)  # shown while the user is not erased

    erased = dashboard.post(f"/v1/admin/users/{PERSONAL_USER}/erase", "admin")
    assert erased.status_code == 202, erased.text
    caught_up(dashboard, erased.json()["position"])

    after = dashboard.api(stream, "auditor")["events"]
    assert after[-1]["type"] == "PersonalDataErased"
    attributes = [e["data"]["attributes"] for e in after if "attributes" in e["data"]]
    assert attributes and all(set(a.values()) == {ERASED} for a in attributes)
    for role in ("reader", "auditor", "admin"):
        page = browse(f"/users/{PERSONAL_USER}", role=role)
        assert figures(page) == user_figures(dashboard.api(f"/v1/users/{PERSONAL_USER}"))
        if role != "reader":
            assert table(page, "events") == event_rows(after)
        content = page.content()
        text = page.locator("body").inner_text()
        for personal in PERSONAL_VALUES:
            assert personal not in content and personal not in text
    dashboard.screenshot(page, "user-erased")
