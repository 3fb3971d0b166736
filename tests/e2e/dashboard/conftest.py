"""A `cohortline serve` filled with the demo's known history, on the embedded default and on the full
stack, and headless Chromium from Debian's packages (`make browser` installs it) driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from infra.demo import demo_events
from tests import services
from tests.e2e.dashboard.browser import wait_ready
from tests.processes import Command, serve, wait_until

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
KEYS = {
    "producer": "dash-producer",
    "reader": "dash-reader",
    "auditor": "dash-auditor",
    "admin": "dash-admin",
}
ROLES = "dash-producer:producer,dash-reader:reader,dash-auditor:reader+auditor,dash-admin:admin"
PERSONAL_USER = "u-personal"
PERSONAL_VALUES = ("ada@example.com", "Ada Lovelace", "+44 20 7946 0000")
"""The personal data of PERSONAL_USER, which the tests look for before and after erasing it."""
LOCALES = {"en": "en-GB", "zh": "zh-CN"}


def known_events() -> list[dict[str, Any]]:
    """The demo history and one user with personal data."""
    personal = [
        {
            "type": "UserRegistered",
            "user_id": PERSONAL_USER,
            "occurred_at": "2025-04-01T09:00:00Z",
            "data": {
                "channel": "web",
                "attributes": {"email": PERSONAL_VALUES[0], "name": PERSONAL_VALUES[1]},
            },
            "context": {"country": "GB", "channel": "web"},
        },
        {
            "type": "UserProfileUpdated",
            "user_id": PERSONAL_USER,
            "occurred_at": "2025-04-02T09:00:00Z",
            "data": {"attributes": {"phone": PERSONAL_VALUES[2]}},
        },
    ]
    return demo_events() + personal


@dataclass
class Dashboard:
    base: str
    stack: str
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))

    def get(self, path: str, role: str = "reader", **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return requests.get(f"{self.base}{path}", params=params, headers=headers, timeout=30)

    def api(self, path: str, role: str = "reader", **params: Any) -> dict[str, Any]:
        """The API's answer for the same query a page makes (status 200 asserted)."""
        response = self.get(path, role, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, role: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return requests.post(f"{self.base}{path}", json=body, headers=headers, timeout=30)

    def screenshot(self, page: Page, name: str) -> None:
        """var/screenshots/<name>.png (full-stack/<name>.png on the full stack), the whole page."""
        folder = SCREENSHOTS if self.stack == "embedded" else SCREENSHOTS / "full-stack"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def fill_and_wait(dashboard: Dashboard, *watched: Command) -> None:
    events = known_events()
    last = 0
    for start in range(0, len(events), 500):
        created = dashboard.post("/v1/events", "producer", {"events": events[start : start + 500]})
        assert created.status_code == 201, created.text
        last = created.json()["last_position"]

    def caught_up() -> bool:
        status = dashboard.api("/v1/status")
        return status["head"] >= last and all(p["lag_events"] == 0 for p in status["projections"])

    wait_until(caught_up, 300, "the read models to apply the known events", *watched)


@pytest.fixture(scope="session", params=["embedded", "full_stack"])
def dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    workdir = tmp_path_factory.mktemp(f"dashboard-{request.param}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = ROLES
    commands: list[Command] = []
    database = None
    if request.param == "full_stack":
        urls = request.getfixturevalue("service_urls")
        database = services.create_database(urls.database)
        services.migrate(database)
        env.update(
            COHORTLINE_DATABASE_URL=database,
            COHORTLINE_KAFKA_URL=urls.kafka,
            COHORTLINE_ELASTICSEARCH_URL=urls.elasticsearch,
            COHORTLINE_KAFKA_TOPIC=services.unique_name("cohortline.dashboard"),
            COHORTLINE_ELASTICSEARCH_INDEX=services.unique_name("cohortline-dashboard-users"),
        )
    server, base = serve(env, workdir)
    commands.append(server)
    if request.param == "full_stack":
        commands += [Command(["relay"], env, workdir, "relay"), Command(["worker"], env, workdir, "worker")]
    try:
        dashboard = Dashboard(base.replace("127.0.0.1", "localhost"), request.param)
        fill_and_wait(dashboard, *commands)
        yield dashboard
    finally:
        for command in reversed(commands):
            command.stop()
        if database is not None:
            services.delete_index(env["COHORTLINE_ELASTICSEARCH_URL"], env["COHORTLINE_ELASTICSEARCH_INDEX"])
            services.drop_database(database)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Browser]:
    """Per module, after the server: Playwright's sync API runs an event loop in this thread while
    it is open, so nothing else may call asyncio.run then (the services' checks, later modules)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield launched
        launched.close()


@dataclass
class Opened:
    """A browser context signed in with one role, and the console errors its pages logged."""

    page: Page
    errors: list[str]
    allowed: tuple[re.Pattern[str], ...]


@pytest.fixture
def browse(browser: Browser, dashboard: Dashboard) -> Iterator[Callable[..., Page]]:
    """open(path, lang="en", role="reader", allow=()) → a loaded page; at teardown no page may have
    logged a console error or warning other than those matching `allow` (regular expressions)."""
    opened: list[Opened] = []

    def open_page(path: str, lang: str = "en", role: str = "reader", allow: tuple[str, ...] = ()) -> Page:
        context = browser.new_context(
            locale=LOCALES[lang], viewport={"width": 1440, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        record = Opened(page, [], tuple(re.compile(a) for a in allow))
        page.on(
            "console",
            lambda m: record.errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        page.on("pageerror", lambda e: record.errors.append(f"page error: {e}"))
        opened.append(record)
        sign_in(page, dashboard, role)
        page.goto(f"{dashboard.base}{path}")
        wait_ready(page)
        return page

    yield open_page
    unexpected = [
        e for record in opened for e in record.errors if not any(a.search(e) for a in record.allowed)
    ]
    for record in opened:
        record.page.context.close()
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)


def sign_in(page: Page, dashboard: Dashboard, role: str) -> None:
    page.goto(f"{dashboard.base}/sign-in")
    page.fill("#key", dashboard.keys[role])
    with page.expect_navigation():
        page.click("form button[type=submit]")
