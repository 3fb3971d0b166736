"""The overview page: the four dimensions against the period before, and the daily trends."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.e2e.dashboard.browser import choose, download_csv, figure, state, table, translated

SHARES = {"efficiency": ("activation_rate", "repurchase_rate"), "quality": ("retention_d30", "csat")}
COUNTS = ("active_users", "new_users", "retained_users", "orders")


def expected_figures(answer: dict) -> dict[str, str]:
    """Each tile's key and exact value, from the API's answer."""
    shown = {key: str(answer["scale"][key]) for key in COUNTS}
    for dimension, keys in SHARES.items():
        for key in keys:
            value = answer[dimension][key]
            shown[key] = "" if value is None else _number(value)
    for key in ("net_revenue", "arpu", "ltv_90d"):
        for currency, amount in answer["value"][key].items():
            shown[f"{key}:{currency}"] = amount
    return shown


def _number(value: float) -> str:
    """As JavaScript's String(number) writes it."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def page_figures(page, keys) -> dict[str, str]:
    return {key: figure(page, key) for key in keys}


def test_overview_shows_the_api_figures_and_follows_its_range(dashboard, browse):
    page = browse("/")
    config = page.evaluate("window.Cohortline.config.period")
    assert config["preset"] == "last_30"
    answer = dashboard.api("/v1/overview", **{"from": config["from"], "to": config["to"]})
    expected = expected_figures(answer)
    assert page_figures(page, expected) == expected
    assert state(page, "active-trend") == "ready" and state(page, "revenue-trend") == "ready"

    rows = table(page, "figures")
    assert download_csv(page, "figures")[1:] == rows
    assert {row[1] for row in rows} >= set(expected)
    dashboard.screenshot(page, "overview")

    url = choose(page, "range", "last_90")
    period = page.evaluate("window.Cohortline.config.period")
    assert parse_qs(urlsplit(url).query)["range"] == ["last_90"]
    wider = expected_figures(dashboard.api("/v1/overview", **{"from": period["from"], "to": period["to"]}))
    assert page_figures(page, wider) == wider
    assert wider["active_users"] != expected["active_users"]


def test_overview_in_chinese_shows_the_same_figures(dashboard, browse):
    page = browse("/?range=last_90", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Overview", "zh") != "Overview"
    period = page.evaluate("window.Cohortline.config.period")
    expected = expected_figures(dashboard.api("/v1/overview", **{"from": period["from"], "to": period["to"]}))
    assert page_figures(page, expected) == expected
    dashboard.screenshot(page, "overview-zh")


def test_a_custom_range_is_kept_in_the_url(dashboard, browse):
    page = browse("/?range=custom&from=2025-03-10&to=2025-03-23")
    assert page.locator('input[name="from"]').input_value() == "2025-03-10"
    expected = expected_figures(dashboard.api("/v1/overview", **{"from": "2025-03-10", "to": "2025-03-23"}))
    assert page_figures(page, expected) == expected

    bad = browse("/?range=custom&from=2025-03-23&to=2025-03-10")
    assert bad.get_by_role("alert").first.inner_text() == "The range starts after it ends"
    assert bad.evaluate("window.Cohortline.config.period.preset") == "last_30"
