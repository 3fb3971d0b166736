"""The open local mode on an empty history: no sign-in, and every page shows its empty states
(not errors, not console noise) before the first event arrives."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

from api.dashboard.pages import PAGES
from tests.e2e.dashboard.browser import wait_ready
from tests.e2e.dashboard.conftest import CHROMIUM
from tests.processes import serve


@pytest.fixture
def open_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    server, base = serve(env, tmp_path, "--open")
    yield base.replace("127.0.0.1", "localhost")
    assert server.stop() == 0, server.output()


def test_every_page_opens_without_sign_in_and_shows_empty_states(open_server):
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for listed in PAGES:
            page.goto(f"{open_server}{listed.path}")
            wait_ready(page)
            assert page.url == f"{open_server}{listed.path}", "no sign-in in open mode"
            assert page.locator("form[action='/sign-out']").count() == 0
            states = page.locator("[data-section]").evaluate_all("s => s.map(x => x.dataset.state)")
            assert "error" not in states and "loading" not in states, (listed.path, states)
            assert "empty" in states or listed.name in ("status", "audit"), (listed.path, states)
        browser.close()
    assert errors == []
