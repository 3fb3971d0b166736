"""Reading a dashboard page in the browser: its figures, tables and CSV as the tests compare them
with the API. Every shown number keeps the API's exact value in `data-value` (api/dashboard/static/
dashboard.js), so a page is read by those, never by its locale-formatted text."""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path

from babel.support import Translations
from playwright.sync_api import Page

TRANSLATIONS = Path(__file__).resolve().parents[3] / "api" / "dashboard" / "translations"
READY_TIMEOUT_MS = 20_000


def wait_ready(page: Page) -> None:
    """Until every section of the page has loaded (or shown its empty or error state)."""
    page.wait_for_selector("body[data-ready=true]", timeout=READY_TIMEOUT_MS)


def ready_ms(page: Page) -> float:
    """Milliseconds from the navigation's start until the page's sections had all settled."""
    return float(page.evaluate("window.cohortlineReadyMs"))


def state(page: Page, section: str) -> str:
    """`ready`, `empty` or `error` (`loading` before)."""
    return page.locator(f'[data-section="{section}"]').get_attribute("data-state") or ""


def figure(page: Page, key: str) -> str:
    """The exact value behind a headline figure."""
    return page.locator(f'[data-figure="{key}"]').get_attribute("data-value") or ""


def header(page: Page, section: str) -> list[str]:
    return page.locator(f'[data-section="{section}"] table thead th').all_inner_texts()


def table(page: Page, section: str) -> list[list[str]]:
    """The exact values behind a section's table, row by row."""
    return page.locator(f'[data-section="{section}"] table tbody tr').evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.value ?? c.textContent))"
    )


def download_csv(page: Page, section: str) -> list[list[str]]:
    """The section's CSV export, parsed (header row first)."""
    with page.expect_download() as download:
        page.locator(f'[data-section="{section}"] [data-csv]').click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def choose(page: Page, name: str, value: str) -> str:
    """Pick `value` in the control named `name` (it applies on change); the new URL once loaded."""
    with page.expect_navigation():
        page.select_option(f'form[data-controls] select[name="{name}"]', value)
    wait_ready(page)
    return page.url


def fill(page: Page, name: str, value: str) -> str:
    """Type into the text control `name` and press Enter; the new URL once loaded."""
    with page.expect_navigation():
        page.fill(f'form[data-controls] [name="{name}"]', value)
        page.press(f'form[data-controls] [name="{name}"]', "Enter")
    wait_ready(page)
    return page.url


@cache
def _catalogue(lang: str) -> Translations:
    return Translations.load(str(TRANSLATIONS), [lang])


def translated(message: str, lang: str) -> str:
    """`message` as the dashboard shows it in `lang` (the compiled catalogue)."""
    return message if lang == "en" else _catalogue(lang).gettext(message)
