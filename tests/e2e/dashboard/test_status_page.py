"""The Status page (GET /v1/status): the figures an operator checks first, each projection's
position, lag, state and dead letters, the halts and the backends equal the API's answer; the
`show` control lives in the URL and narrows the projections to those needing attention."""

from __future__ import annotations

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
    wait_ready,
)
from tests.e2e.dashboard.conftest import Dashboard
from tests.processes import wait_until

Browse = Callable[..., Page]

PROJECTION_COLUMNS = (
    "Projection", "State", "Position", "Lag (events)", "Lag (seconds)", "Watermark", "Dead letters",
    "Halted at position", "Since",
)  # fmt: skip
DEAD_LETTER_COLUMNS = (
    "Projection", "Dead letters", "Unreadable message", "Invalid event", "Document rejected", "Oldest failed at",
)  # fmt: skip
BACKEND_COLUMNS = ("Component", "Backend")


def value(v: Any) -> str:
    """A value as the page keeps it in data-value: null as empty, a whole float as JavaScript writes it."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def needs_attention(p: dict[str, Any]) -> bool:
    return p["state"] == "stopped" or p["lag_events"] > 0 or p["dead_letters"]["count"] > 0


def projection_rows(projections: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            p["name"],
            p["state"],
            value(p["position"]),
            value(p["lag_events"]),
            value(p["lag_seconds"]),
            value(p["watermark"]),
            value(p["dead_letters"]["count"]),
            value(p["halt"] and p["halt"]["position"]),
            value(p["halt"] and p["halt"]["since"]),
        ]
        for p in projections
    ]


def dead_letter_rows(projections: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for p in projections:
        kinds = p["dead_letters"]["by_kind"]
        rows.append(
            [
                p["name"],
                value(p["dead_letters"]["count"]),
                value(kinds["unreadable_message"]),
                value(kinds["invalid_event"]),
                value(kinds["document_rejected"]),
                value(p["dead_letters"]["oldest_failed_at"]),
            ]
        )
    return rows


def caught_up_status(dashboard: Dashboard) -> dict[str, Any]:
    """The status once every projection has applied the whole log (so nothing moves while compared)."""

    def check() -> dict[str, Any] | None:
        status = dashboard.api("/v1/status")
        return status if all(p["lag_events"] == 0 for p in status["projections"]) else None

    return wait_until(check, 120, "every projection to catch up")


def assert_matches(page: Page, status: dict[str, Any], lang: str = "en", show: str = "all") -> None:
    projections = status["projections"]
    assert figure(page, "head") == value(status["head"])
    assert figure(page, "lag_events") == value(max((p["lag_events"] for p in projections), default=0))
    assert float(figure(page, "lag_seconds")) == max((p["lag_seconds"] for p in projections), default=0)
    assert figure(page, "dead_letters") == value(sum(p["dead_letters"]["count"] for p in projections))
    assert figure(page, "halted") == value(sum(p["state"] == "stopped" for p in projections))

    listed = [p for p in projections if show == "all" or needs_attention(p)]
    if listed:
        assert header(page, "projections") == [translated(c, lang) for c in PROJECTION_COLUMNS]
        assert table(page, "projections") == projection_rows(listed)
        assert table(page, "dead-letters") == dead_letter_rows(listed)
    else:
        assert state(page, "projections") == state(page, "dead-letters") == "empty"
    halts = [
        [p["name"], value(h["partition"]), value(h["position"]), h["error"], h["since"]]
        for p in projections
        for h in p["halts"]
    ]
    if halts:
        assert table(page, "halts") == halts
    else:
        assert state(page, "halts") == "empty"
    assert table(page, "backends") == [[k, v] for k, v in status["backends"].items()]


def test_status_shows_what_the_api_answers(dashboard: Dashboard, browse: Browse) -> None:
    status = caught_up_status(dashboard)
    page = browse("/status")
    assert_matches(page, status)
    assert len(table(page, "projections")) == len(status["projections"]) >= 1
    assert page.locator('[data-section="projections"] tbody tr.halted').count() == sum(
        p["state"] == "stopped" for p in status["projections"]
    )
    assert header(page, "dead-letters") == list(DEAD_LETTER_COLUMNS)
    assert header(page, "backends") == list(BACKEND_COLUMNS)
    assert download_csv(page, "projections") == [list(PROJECTION_COLUMNS), *table(page, "projections")]
    assert download_csv(page, "backends") == [list(BACKEND_COLUMNS), *table(page, "backends")]
    search = "elasticsearch" if dashboard.stack == "full_stack" else "sqlite"
    assert dict(table(page, "backends"))["search"] == search
    dashboard.screenshot(page, "status")


def test_show_control_lives_in_the_url(dashboard: Dashboard, browse: Browse) -> None:
    status = caught_up_status(dashboard)
    page = browse("/status")
    url = choose(page, "show", "attention")
    assert parse_qs(urlsplit(url).query) == {"show": ["attention"]}
    assert_matches(page, status, show="attention")
    if not any(needs_attention(p) for p in status["projections"]):
        assert state(page, "projections") == "empty"  # a healthy system needs nothing
    url = choose(page, "show", "all")
    assert parse_qs(urlsplit(url).query) == {"show": ["all"]}
    assert_matches(page, status)
    assert state(page, "projections") == "ready"


def test_status_page_in_chinese(dashboard: Dashboard, browse: Browse) -> None:
    status = caught_up_status(dashboard)
    page = browse("/status", lang="zh")
    assert page.locator("h1").inner_text() == translated("Status", "zh") != "Status"
    assert_matches(page, status, lang="zh")
    assert page.locator('[data-section="health"] h2').inner_text() == translated("What to check first", "zh")
    assert page.locator('[data-figure="head"]').locator("xpath=..").locator("dt").inner_text() == translated(
        "Log head", "zh"
    )
    dashboard.screenshot(page, "status-zh")


def test_a_halted_projection_stands_out(dashboard: Dashboard, browse: Browse) -> None:
    """A halt cannot be caused from outside, so the page is shown a halted answer of the same shape."""
    status = caught_up_status(dashboard)
    halt = {
        "partition": -1,
        "position": status["head"],
        "error": "ValueError: bad row",
        "since": "2025-05-01T10:00:00Z",
    }
    halted = dict(status["projections"][0])
    halted |= {
        "name": "halted-example",
        "lag_events": 12,
        "lag_seconds": 81.5,
        "state": "stopped",
        "halt": halt,
        "halts": [halt],
        "dead_letters": {
            "count": 3,
            "oldest_failed_at": "2025-05-01T09:00:00Z",
            "by_kind": {"unreadable_message": 0, "invalid_event": 2, "document_rejected": 1},
        },
    }
    answer = status | {"projections": [*status["projections"], halted]}
    page = browse("/status")
    page.route("**/v1/status", lambda route: route.fulfill(json=answer))
    page.reload()
    wait_ready(page)
    assert_matches(page, answer)
    assert figure(page, "halted") == "1" and figure(page, "dead_letters") == "3"
    for key in ("halted", "lag_events", "lag_seconds", "dead_letters"):
        assert "alarm" in (
            page.locator(f'[data-figure="{key}"]').locator("xpath=..").get_attribute("class") or ""
        )
    rows = page.locator('[data-section="projections"] tbody tr')
    assert rows.last.get_attribute("class") == "halted"
    assert rows.first.get_attribute("class") in (None, "")
    assert table(page, "halts") == [
        ["halted-example", "-1", str(status["head"]), "ValueError: bad row", halt["since"]]
    ]
    page.locator('[data-section="halts"]').scroll_into_view_if_needed()
    url = choose(page, "show", "attention")
    assert parse_qs(urlsplit(url).query) == {"show": ["attention"]}
    assert table(page, "projections") == projection_rows([halted])
    dashboard.screenshot(page, "status-halted")
