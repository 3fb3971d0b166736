"""Signing in and out, the session cookie, the language, and what each role sees."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from tests.e2e.dashboard.browser import translated


def test_pages_need_a_reader_key_held_in_a_secure_session_cookie(dashboard, browser):
    anonymous = requests.get(f"{dashboard.base}/?range=last_7", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/sign-in?next=/")

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{dashboard.base}/?range=last_7")
    assert "/sign-in" in page.url
    page.fill("#key", "not-a-key")
    page.click("form button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "This key is not known."
    page.fill("#key", dashboard.keys["producer"])
    page.click("form button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "This key lacks the reader role."

    page.fill("#key", dashboard.keys["reader"])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url == f"{dashboard.base}/?range=last_7"
    (cookie,) = [c for c in context.cookies() if c["name"] == "cohortline_session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert dashboard.keys["reader"] not in cookie["value"]

    # The session reads the JSON routes of its role and nothing else, and never writes.
    assert page.evaluate("fetch('/v1/status').then(r => r.status)") == 200
    assert page.evaluate("fetch('/v1/audit/verify').then(r => r.status)") == 403
    posted = (
        "fetch('/v1/events', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})"
    )
    assert page.evaluate(f"{posted}.then(r => r.status)") == 401

    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert "/sign-in" in page.url
    assert page.evaluate("fetch('/v1/status').then(r => r.status)") == 401
    context.close()


def test_a_post_from_another_site_is_refused(dashboard):
    refused = requests.post(
        f"{dashboard.base}/sign-in",
        data={"key": dashboard.keys["reader"]},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert refused.status_code == 403 and "Set-Cookie" not in refused.headers
    host = dashboard.base.split("://", 1)[1]
    behind_tls = requests.post(
        f"{dashboard.base}/sign-in",
        data={"key": dashboard.keys["reader"]},
        headers={"Origin": f"https://{host}"},
        allow_redirects=False,
        timeout=10,
    )
    assert behind_tls.status_code == 302 and "cohortline_session=" in behind_tls.headers["Set-Cookie"]


def test_the_language_follows_the_browser_and_a_choice_is_remembered(dashboard, browse):
    page = browse("/?range=last_7", lang="zh")
    assert page.locator("h1").inner_text() == translated("Overview", "zh") != "Overview"
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    assert page.url.endswith("/?range=last_7") and page.locator("h1").inner_text() == "Overview"
    page.goto(f"{dashboard.base}/?range=last_90")
    assert page.locator("h1").inner_text() == "Overview"
    with page.expect_navigation():
        page.get_by_role("link", name="中文").click()
    assert page.locator("h1").inner_text() == translated("Overview", "zh")


def test_every_page_is_in_the_navigation_and_answers(dashboard, browse):
    page = browse("/")
    links = page.locator("header nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert links == [
        "/",
        "/retention",
        "/activity",
        "/scenes-and-tools",
        "/operations",
        "/service",
        "/value",
        "/users",
        "/status",
    ]
    for link in links:
        signed_out = requests.get(f"{dashboard.base}{link}", allow_redirects=False, timeout=10)
        assert signed_out.status_code == 302, link


def test_controls_work_from_the_keyboard(dashboard, browse):
    page = browse("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.focus('form[data-controls] select[name="range"]')
    with page.expect_navigation():
        page.keyboard.press("ArrowDown")
    assert page.url.endswith("/?range=last_90")
    page.focus('form[data-controls] select[name="range"]')
    page.keyboard.press("End")  # custom: the dates open for typing, nothing is applied yet
    assert page.url.endswith("/?range=last_90")
    assert page.evaluate("document.activeElement.name") == "from"
    page.keyboard.type("03102025")
    page.focus('form[data-controls] input[name="to"]')
    page.keyboard.type("03232025")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/?range=custom&from=2025-03-10&to=2025-03-23")


def test_pages_fit_a_laptop_and_fill_a_wide_monitor(dashboard, browse):
    page = browse("/", role="auditor")
    links = page.locator("header nav a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
    for width in (1280, 2560):
        page.set_viewport_size({"width": width, "height": 900})
        for link in links:
            page.goto(f"{dashboard.base}{link}")
            page.wait_for_selector("body[data-ready=true]")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (link, width, overflow)
            used = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
            assert used >= min(width, 1800) - 2 * 24 - 1, (link, width, used)


def test_each_page_reads_only_the_routes_the_registry_lists(dashboard, browse):
    from api.dashboard.pages import PAGES, USER

    page = browse("/", role="auditor")
    requested: list[str] = []
    page.on("request", lambda r: requested.append(urlsplit(r.url).path) if "/v1/" in r.url else None)
    for listed in (*PAGES, USER):
        requested.clear()
        path = re.sub(r"<(?:\w+:)?user_id>", "u0001", listed.path)
        page.goto(f"{dashboard.base}{path}")
        page.wait_for_selector("body[data-ready=true]")
        allowed = [re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", r) + "$") for r in listed.reads]
        assert requested, path
        assert [r for r in requested if not any(a.match(r) for a in allowed)] == [], path
