"""The operations page: every campaign, and the chosen campaign's effect, treatment against control."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

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

SHARES = ("ordered_7d", "ordered_30d", "active_after_7d", "active_after_30d")
EMPTY_CAMPAIGN = "e2e-operations-no-members"
"""A campaign nobody has joined, which the tests add to the demo's one so the choice has two."""
CAMPAIGN_HEADER = (
    "Campaign",
    "Name",
    "Kind",
    "Starts",
    "Ends",
    "Ended",
    "Treatment members",
    "Control members",
)
GROUPS_HEADER = (
    "Metric",
    "Currency",
    "Treatment",
    "Control",
    "Uplift",
    "95%% interval, low",
    "95%% interval, high",
)


def _number(value: Any) -> str:
    """As the page's data-value writes it (JavaScript's String(number); null as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def campaign_rows(campaigns: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            c["campaign_id"],
            c["name"],
            c["kind"],
            c["starts_at"],
            _number(c["ends_at"]),
            _number(c["ended"]),
            _number(c["members"]["treatment"]),
            _number(c["members"]["control"]),
        ]
        for c in campaigns
    ]


def group_rows(effect: dict[str, Any]) -> list[list[str]]:
    """The treatment-against-control table from the API's answer: counts, shares, money per currency."""
    treatment, control = effect["groups"]["treatment"], effect["groups"]["control"]
    uplift = effect["uplift"]

    def row(key: str, currency: str, t: Any, c: Any, difference: dict[str, Any] | None) -> list[str]:
        ci = (difference or {}).get("ci95") or [None, None]
        value = (difference or {}).get("value")
        return [key, currency, _number(t), _number(c), _number(value), _number(ci[0]), _number(ci[1])]

    rows = [row("members", "", treatment["members"], control["members"], None)]
    rows += [row(key, "", treatment[key], control[key], uplift[key]) for key in SHARES]
    rows.append(row("coupons_redeemed", "", treatment["coupons_redeemed"], control["coupons_redeemed"], None))
    currencies = (
        set(treatment["net_revenue_30d"]) | set(control["net_revenue_30d"]) | set(uplift["net_revenue_30d"])
    )
    for currency in sorted(currencies):
        rows.append(
            row(
                "net_revenue_30d",
                currency,
                treatment["net_revenue_30d"].get(currency),
                control["net_revenue_30d"].get(currency),
                uplift["net_revenue_30d"].get(currency),
            )
        )
    return rows


def effect_figures(effect: dict[str, Any]) -> dict[str, str]:
    groups = effect["groups"]
    return {
        f"{key}:{group}": str(groups[group][key])
        for key in ("members", "coupons_redeemed")
        for group in ("treatment", "control")
    }


def assert_effect(page, effect: dict[str, Any]) -> None:
    """The page shows this effect answer: figures, completeness, the groups table and its CSV."""
    assert {key: figure(page, key) for key in effect_figures(effect)} == effect_figures(effect)
    for days in ("7d", "30d"):
        note = page.locator(f'[data-section="effect"] [data-complete="{days}"]')
        assert note.get_attribute("data-value") == _number(effect[f"complete_{days}"])
    assert (
        page.locator('[data-section="effect"] [data-campaign]').get_attribute("data-campaign")
        == (effect["campaign"]["campaign_id"])
    )
    rows = table(page, "groups")
    assert rows == group_rows(effect)
    assert download_csv(page, "groups")[1:] == rows


def chosen(page) -> str:
    return page.locator('form[data-controls] select[name="campaign"]').input_value()


@pytest.fixture
def two_campaigns(dashboard: Dashboard) -> list[dict[str, Any]]:
    """The demo's campaign and one nobody has joined (added once per server: a fixed event id)."""
    created = dashboard.post(
        "/v1/events",
        "producer",
        {
            "events": [
                {
                    "event_id": "7c0e5a52-4f1e-4d7b-9a0e-0b5e0e2e0a01",
                    "type": "CampaignCreated",
                    "occurred_at": "2025-04-20T00:00:00Z",
                    "data": {
                        "campaign_id": EMPTY_CAMPAIGN,
                        "name": "No members yet",
                        "kind": "benefit",
                        "starts_at": "2025-04-21T00:00:00Z",
                    },
                }
            ]
        },
    )
    assert created.status_code in (200, 201), created.text

    def listed() -> list[dict[str, Any]] | None:
        campaigns = dashboard.api("/v1/campaigns")["campaigns"]
        ready = any(c["campaign_id"] == EMPTY_CAMPAIGN for c in campaigns)
        return campaigns if ready and dashboard.get(f"/v1/campaigns/{EMPTY_CAMPAIGN}/effect").ok else None

    return wait_until(listed, 120, f"the campaign {EMPTY_CAMPAIGN} to be listed")


def test_operations_lists_the_campaigns_and_shows_the_first_ones_effect(dashboard, browse):
    page = browse("/operations")
    campaigns = dashboard.api("/v1/campaigns")["campaigns"]
    assert campaigns, "the demo history has a campaign"
    assert header(page, "campaigns") == list(CAMPAIGN_HEADER)
    rows = table(page, "campaigns")
    assert rows == campaign_rows(campaigns)
    assert download_csv(page, "campaigns")[1:] == rows
    links = page.locator('[data-section="campaigns"] tbody td a').evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert links == [f"?campaign={c['campaign_id']}" for c in campaigns]

    # The choice lists every campaign and defaults to the first.
    options = page.locator('select[name="campaign"] option').evaluate_all("o => o.map(x => x.value)")
    assert options == [c["campaign_id"] for c in campaigns]
    first = campaigns[0]["campaign_id"]
    assert chosen(page) == first
    effect = dashboard.api(f"/v1/campaigns/{first}/effect")
    assert_effect(page, effect)
    assert header(page, "groups") == [label.replace("%%", "%") for label in GROUPS_HEADER]
    assert state(page, "uplift") == "ready" and state(page, "uplift-money") == "ready"
    dashboard.screenshot(page, "operations")


def test_choosing_a_campaign_changes_the_url_and_the_effect(dashboard, browse, two_campaigns):
    first = two_campaigns[0]["campaign_id"]
    assert first != EMPTY_CAMPAIGN
    page = browse("/operations")
    assert chosen(page) == first
    before = dashboard.api(f"/v1/campaigns/{first}/effect")
    assert_effect(page, before)

    url = choose(page, "campaign", EMPTY_CAMPAIGN)
    assert parse_qs(urlsplit(url).query)["campaign"] == [EMPTY_CAMPAIGN]
    assert chosen(page) == EMPTY_CAMPAIGN
    after = dashboard.api(f"/v1/campaigns/{EMPTY_CAMPAIGN}/effect")
    assert_effect(page, after)
    assert figure(page, "members:treatment") == "0" != str(before["groups"]["treatment"]["members"])
    # nobody joined: no share, so no uplift to draw
    assert state(page, "uplift") == "empty" and state(page, "uplift-money") == "empty"

    # Each campaign id in the list links to the page showing that campaign.
    with page.expect_navigation():
        page.locator(f'[data-section="campaigns"] a[href="?campaign={first}"]').click()
    wait_ready(page)
    assert parse_qs(urlsplit(page.url).query)["campaign"] == [first]
    assert chosen(page) == first
    assert_effect(page, before)


def test_an_unknown_campaign_shows_the_error_state(dashboard, browse):
    answer = dashboard.get("/v1/campaigns/no-such-campaign/effect")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "campaign_not_found"
    # the browser itself logs the 404 of the effect's request
    page = browse("/operations?campaign=no-such-campaign", allow=(r"status of 404",))
    for section in ("effect", "groups", "uplift", "uplift-money"):
        assert state(page, section) == "error"
    message = page.locator('[data-section="groups"] .state.error').inner_text()
    assert "campaign_not_found" in message
    assert state(page, "campaigns") == "ready"
    assert chosen(page) == "no-such-campaign"
    assert table(page, "campaigns") == campaign_rows(dashboard.api("/v1/campaigns")["campaigns"])


def test_operations_in_chinese_shows_the_same_figures(dashboard, browse):
    page = browse("/operations", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Operations", "zh") != "Operations"
    labels = [translated(label, "zh").replace("%%", "%") for label in GROUPS_HEADER]
    assert header(page, "groups") == labels
    assert labels[1] == translated("Currency", "zh") != "Currency"
    assert header(page, "campaigns") == [translated(label, "zh") for label in CAMPAIGN_HEADER]
    campaigns = dashboard.api("/v1/campaigns")["campaigns"]
    assert table(page, "campaigns") == campaign_rows(campaigns)
    assert_effect(page, dashboard.api(f"/v1/campaigns/{campaigns[0]['campaign_id']}/effect"))
    dashboard.screenshot(page, "operations-zh")
