"""The analytics endpoints on both storages: the demo history posted over HTTP, projected, and every
answer compared with the reference definitions computed over the stored log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from infra.demo import demo_events
from streams.local import LocalFollower
from streams.log_reader import LogReader
from tests import reference
from tests.integration.test_append_http import PRODUCER, event

READER = {"Authorization": "Bearer read"}
START, END = date(2025, 3, 1), date(2025, 5, 4)


@pytest.fixture
def history(client, system):
    raw = demo_events()
    for start in range(0, len(raw), 1000):
        assert (
            client.post(
                "/v1/events", json={"events": raw[start : start + 1000]}, headers=PRODUCER
            ).status_code
            == 201
        )
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    return LogReader(system.event_store).read(0, 100_000)


def post(client, events: list[dict]) -> None:
    for start in range(0, len(events), 1000):
        response = client.post("/v1/events", json={"events": events[start : start + 1000]}, headers=PRODUCER)
        assert response.status_code == 201, response.json


def at(day: str, hours: float = 0) -> str:
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def campaign_levers() -> tuple[list[dict], list[dict], list[dict]]:
    """Campaigns over the demo's users, as three batches in the order they are posted: the campaigns;
    enrolments, coupons, their orders and an end; and an enrolment that arrives after the end but
    happened before it.

    - `c-spring` (ended): users 0..79 alternately in treatment and control from Mar 10; treatment members
      get a coupon of this campaign, every third redeems it on a GBP or EUR order within days, some
      paid orders are refunded; a few members also redeem a coupon without a campaign;
    - `c-loyalty` (not ended, no `ends_at`): users 100..104, enrolled near the watermark (incomplete);
      one control member only, so no intervals;
    - `c-empty`: created, never enrolled into."""
    created = [
        event(
            "CampaignCreated",
            None,
            at("2025-03-09"),
            campaign_id="c-spring",
            name="Spring",
            kind="incentive",
            starts_at=at("2025-03-10"),
            ends_at=at("2025-04-10"),
        ),
        event(
            "CampaignCreated",
            None,
            at("2025-04-01"),
            campaign_id="c-loyalty",
            name="Loyalty",
            kind="benefit",
            starts_at="2025-04-15T02:00:00+02:00",
        ),
        event(
            "CampaignCreated",
            None,
            at("2025-03-01"),
            campaign_id="c-empty",
            name="Nobody came",
            kind="activity",
            starts_at=at("2025-03-01"),
            ends_at=at("2025-03-31"),
        ),
    ]
    enrolled: list[dict] = []
    for n in range(80):
        user, day = f"u{n:04d}", f"2025-03-{10 + n % 20:02d}"
        group = "treatment" if n % 2 == 0 else "control"
        enrolled.append(
            event("CampaignEnrolled", user, at(day, 9 + n % 5), campaign_id="c-spring", group=group)
        )
        currency = "GBP" if n % 4 < 2 else "EUR"
        if group == "treatment":
            coupon = f"cp-{user}"
            enrolled.append(
                event(
                    "CouponIssued",
                    user,
                    at(day, 10),
                    coupon_id=coupon,
                    campaign_id="c-spring",
                    value="5.00",
                    currency=currency,
                )
            )
            if n % 3 == 0:
                order = f"{user}-spring"
                placed_at = at(day, 24 * (n % 9) + 11)
                amount = f"{20 + n}.{n % 100:02d}"
                enrolled += [
                    event(
                        "OrderPlaced",
                        user,
                        placed_at,
                        order_id=order,
                        amount=amount,
                        currency=currency,
                        coupon_id=coupon,
                    ),
                    event("CouponRedeemed", user, placed_at, coupon_id=coupon, order_id=order),
                    event("OrderPaid", user, placed_at, order_id=order, amount=amount),
                ]
                if n % 4 == 0:
                    enrolled.append(
                        event("OrderRefunded", user, at(day, 24 * 12), order_id=order, amount="3.33")
                    )
        if n % 10 == 1:  # a control member's own order and a coupon of no campaign
            order, coupon = f"{user}-own", f"cp-{user}-free"
            enrolled += [
                event("CouponIssued", user, at(day, 30), coupon_id=coupon, value="2.00", currency="GBP"),
                event("OrderPlaced", user, at(day, 31), order_id=order, amount="12.50", currency="GBP"),
                event("CouponRedeemed", user, at(day, 31), coupon_id=coupon, order_id=order),
                event("OrderPaid", user, at(day, 32), order_id=order, amount="12.50"),
            ]
    for n, group in zip(range(100, 105), ("treatment", "treatment", "control", "treatment", "treatment")):
        user = f"u{n:04d}"
        enrolled.append(
            event(
                "CampaignEnrolled", user, at(f"2025-04-{15 + n % 5}", 8), campaign_id="c-loyalty", group=group
            )
        )
        enrolled.append(
            event(
                "CouponIssued",
                user,
                at(f"2025-04-{15 + n % 5}", 9),
                coupon_id=f"cl-{user}",
                campaign_id="c-loyalty",
                value="1",
                currency="EUR",
            )
        )
    enrolled.append(event("CampaignEnded", None, at("2025-04-10"), campaign_id="c-spring"))
    late = [
        event("CampaignEnrolled", "u0090", at("2025-04-09", 23), campaign_id="c-spring", group="treatment")
    ]
    return created, enrolled, late


def early_customers() -> list[dict]:
    """Ten users first seen in January (before the demo), half registered, paying in GBP or EUR within
    and after 90 days, some refunded, six active again after day 30, each rating once: the overview's
    90-day LTV and 30-day retention have someone to count."""
    events: list[dict] = []
    for n in range(10):
        user, day = f"early-{n}", f"2025-01-{1 + 3 * n:02d}"
        events.append(event("SessionStarted", user, at(day, 10)))
        if n % 2 == 0:
            events.append(event("UserRegistered", user, at(day, 10.5), channel="web"))
        currency = "EUR" if n % 3 == 0 else "GBP"
        for k, days in enumerate((n, 70 if n % 2 else None, 100 if n % 3 == 0 else None)):
            if days is None:
                continue
            order, amount = f"{user}-o{k}", f"{10 + n}.{25 * k:02d}"
            events += [
                event(
                    "OrderPlaced",
                    user,
                    at(day, 24 * days + 12),
                    order_id=order,
                    amount=amount,
                    currency=currency,
                ),
                event("OrderPaid", user, at(day, 24 * days + 13), order_id=order, amount=amount),
            ]
            if n % 4 == 0:
                events.append(
                    event("OrderRefunded", user, at(day, 24 * days + 24 * 40), order_id=order, amount="1.00")
                )
        if n < 6:
            events.append(event("SceneVisited", user, at(day, 24 * 35), scene="content"))
        events.append(event("SatisfactionRated", user, at(day, 48), score=5 - n % 5))
    return events


def service_levers() -> list[dict]:
    """Tickets of users 150..209 opened a day apart from Mar 2 (so across weeks and months): agent
    replies after 1 to 4 hours on most, a customer's reply on some, resolutions after 2 to 50 hours on
    three in four; ratings 1 to 5 on resolved tickets, and a few ratings of orders."""
    events: list[dict] = []
    for n in range(150, 210):
        user, ticket, day = f"u{n:04d}", f"t-{n}", (date(2025, 3, 2) + timedelta(days=n - 150)).isoformat()
        events.append(event("TicketOpened", user, at(day, 8), ticket_id=ticket, category="delivery"))
        if n % 5 == 0:
            events.append(event("TicketReplied", user, at(day, 8.5), ticket_id=ticket, by="customer"))
        if n % 6 != 0:
            events.append(event("TicketReplied", user, at(day, 8 + 1 + n % 4), ticket_id=ticket, by="agent"))
            events.append(event("TicketReplied", user, at(day, 8 + 6), ticket_id=ticket, by="agent"))
        if n % 4 != 0:
            resolved = 8 + 2 + (n * 7) % 49
            events.append(event("TicketResolved", user, at(day, resolved), ticket_id=ticket))
            events.append(
                event("SatisfactionRated", user, at(day, resolved + 1), score=1 + n % 5, ticket_id=ticket)
            )
        if n % 9 == 0:
            events.append(
                event("SatisfactionRated", user, at(day, 20), score=1 + n % 3, order_id=f"{user}-o1")
            )
    return events


@pytest.fixture
def levers_history(client, system):
    """The demo history with campaigns, coupons, GBP orders, tickets and ratings posted over HTTP."""
    created, enrolled, late = campaign_levers()
    post(client, created)
    post(client, demo_events())
    post(client, enrolled + service_levers() + early_customers())
    post(client, late)
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    return LogReader(system.event_store).read(0, 100_000)


def get(client, path: str, **params) -> dict:
    response = client.get(path, query_string=params, headers=READER)
    assert response.status_code == 200, response.json
    return response.json


def test_every_answer_equals_the_definitions(client, history):
    watermark = max(e.occurred_at for e in history)
    dates = {"from": START.isoformat(), "to": END.isoformat()}
    body = get(client, "/v1/activity/active-users", granularity="week", **dates)
    assert body["series"] == reference.active_users(history, "week", START, END)
    assert body["as_of"] == len(history) and body["watermark"] == watermark.isoformat().replace("+00:00", "Z")
    shopping = get(client, "/v1/activity/active-users", granularity="day", filter="scene:shopping", **dates)
    assert shopping["series"] == reference.active_users(history, "day", START, END, "scene:shopping")
    assert get(client, "/v1/activity/stickiness", **dates)["series"] == reference.stickiness(
        history, START, END
    )
    for granularity in ("week", "month"):
        assert get(client, "/v1/activity/frequency", granularity=granularity, **dates)[
            "series"
        ] == reference.frequency(history, granularity, START, END)
        assert get(client, "/v1/activity/lifecycle", granularity=granularity, **dates)[
            "series"
        ] == reference.lifecycle(history, granularity, START, END)
    for params in (
        {"granularity": "week", "cohort": "first_seen", "return": "active", "mode": "on"},
        {
            "granularity": "week",
            "cohort": "signup",
            "return": "order",
            "mode": "on_or_after",
            "breakdown": "channel",
        },
        {
            "granularity": "month",
            "cohort": "first_order",
            "return": "order",
            "mode": "on",
            "breakdown": "country",
        },
        {
            "granularity": "day",
            "cohort": "first_seen",
            "return": "active",
            "mode": "on_or_after",
            "periods": "14",
        },
    ):
        body = get(client, "/v1/retention/cohorts", **params, **dates)
        span = len(
            list(
                __import__("projections.periods", fromlist=["x"]).periods_between(
                    params["granularity"], START, END
                )
            )
        )
        periods = int(params.get("periods", span - 1))
        assert body["cohorts"] == reference.retention(
            history,
            params["granularity"],
            params["cohort"],
            params["return"],
            params["mode"],
            START,
            END,
            periods,
            watermark,
            params.get("breakdown"),
        ), params
    body = get(client, "/v1/orders/repurchase", **dates)
    assert {k: body[k] for k in reference.repurchase(history, START, END)} == reference.repurchase(
        history, START, END
    )
    for granularity in ("day", "week", "month"):
        body = get(client, "/v1/value/revenue", granularity=granularity, **dates)
        assert body["granularity"] == granularity
        assert {"series": body["series"]} == reference.revenue(history, granularity, START, END), granularity


def test_every_feature_answer_equals_the_definitions(client, system, history):
    dates = {"from": START.isoformat(), "to": END.isoformat()}

    def answers_equal_reference(history: list) -> None:
        watermark = max(e.occurred_at for e in history)
        report = get(client, "/v1/features", **dates)["features"]
        assert report == reference.features(history, START, END, watermark)
        assert {"scene:shopping", "scene:social", "scene:content", "tool:check_in"} <= {
            r["feature"] for r in report
        }
        for granularity, cohort, returns, mode, breakdown in (
            ("week", "tool:check_in", "tool:check_in", "on", None),
            ("week", "tool:check_in", "active", "on_or_after", "channel"),
            ("month", "scene:social", "order", "on", None),
            ("day", "first_seen", "tool:wishlist", "on_or_after", "country"),
            ("week", "tool:wishlist", "scene:content", "on", None),
        ):
            params = {
                "granularity": granularity,
                "cohort": cohort,
                "return": returns,
                "mode": mode,
                "periods": "6",
            }
            body = get(
                client,
                "/v1/retention/cohorts",
                **params,
                **({"breakdown": breakdown} if breakdown else {}),
                **dates,
            )
            assert (body["cohort"], body["return"]) == (cohort, returns)
            want = reference.retention(
                history, granularity, cohort, returns, mode, START, END, 6, watermark, breakdown
            )
            assert body["cohorts"] == want and want, params
        for feature in ("tool:check_in", "scene:shopping"):
            impact = get(client, f"/v1/features/{feature}/impact", **dates)
            assert {
                k: v for k, v in impact.items() if k not in ("as_of", "watermark")
            } == reference.feature_impact(history, feature, START, END, watermark)
        assert impact["note"] == "correlation, not causation"

    answers_equal_reference(history)
    # check-ins dated before their users' first known ones arrive late: their adoption moves earlier,
    # for two of them before their first seen too (and to a first-touch channel and country of GB app)
    adopters = sorted({e.user_id for e in history if e.type == "ToolUsed" and e.data["tool"] == "check_in"})[
        :5
    ]
    firsts = {u: min(e.occurred_at for e in history if e.user_id == u) for u in adopters}
    late = [
        event(
            "ToolUsed",
            u,
            (firsts[u] + timedelta(hours=1 if n < 3 else -50)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tool="check_in",
        )
        for n, u in enumerate(adopters)
    ]
    post(client, late)
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    answers_equal_reference(LogReader(system.event_store).read(0, 100_000))


BAD_FEATURES = [
    ("/v1/retention/cohorts", {"cohort": "tool:teleport"}, "cohort", 422),
    ("/v1/retention/cohorts", {"return": "tool:teleport"}, "return", 422),
    ("/v1/activity/active-users", {"filter": "tool:teleport"}, "filter", 422),
    ("/v1/retention/cohorts", {"cohort": "scene:casino"}, "cohort", 400),
    ("/v1/retention/cohorts", {"return": "feature:check_in"}, "return", 400),
    ("/v1/retention/cohorts", {"cohort": "tool:"}, "cohort", 400),
    ("/v1/features/tool:teleport/impact", {}, "feature", 422),
    ("/v1/features/scene:casino/impact", {}, "feature", 400),
    ("/v1/features/check_in/impact", {}, "feature", 400),
    ("/v1/features/tool:check_in/impact", {"from": "2025-04-01"}, "to", 400),
    ("/v1/features", {"from": "2025-04-01", "to": "2025-03-01"}, "to", 400),
    (
        "/v1/features",
        {"from": "2025-03-01", "to": "2025-04-01", "feature": "tool:check_in"},
        "feature",
        400,
    ),
]
"""(path, parameters, the field named, status): features never used (422) and malformed (400)."""


def test_bad_and_unknown_features_are_named(client, system):
    post(client, [event("ToolUsed", "u1", tool="check_in"), event("SceneVisited", "u2", scene="social")])
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    for path, params, field, status in BAD_FEATURES:
        asked = (
            {"from": "2025-03-01", "to": "2025-04-01"}
            if path != "/v1/features" and "from" not in params
            else {}
        )
        response = client.get(path, query_string={**asked, **params}, headers=READER)
        assert response.status_code == status, (path, params, response.json)
        error = response.json["error"]
        assert error["details"][0]["field"] == field, (path, params)
        if status == 422:
            assert error["code"] == "unknown_feature"
            assert error["details"][0]["known"] == ["scene:social", "tool:check_in"]
        else:
            assert error["code"] == "invalid_parameter", (path, params)


def test_every_lever_answer_equals_the_definitions(client, levers_history):
    history = levers_history
    watermark = max(e.occurred_at for e in history)
    assert {e.data["currency"] for e in history if e.type == "OrderPlaced"} == {"EUR", "GBP"}
    assert {e.type for e in history} >= {"CouponRedeemed", "TicketResolved", "SatisfactionRated"}
    dates = {"from": START.isoformat(), "to": END.isoformat()}
    early = date(2025, 1, 1)
    for granularity, definition, periods, first in (
        ("month", "first_seen", None, START),
        ("month", "first_seen", None, early),
        ("week", "first_seen", 3, START),
        ("week", "signup", None, early),
        ("month", "first_order", 1, early),
        ("month", "signup", 0, START),
    ):
        asked = {"granularity": granularity, "cohort": definition, "from": first, "to": END}
        body = get(client, "/v1/value/ltv", **asked, **({} if periods is None else {"periods": periods}))
        assert (body["granularity"], body["cohort"]) == (granularity, definition)
        want = reference.ltv(history, granularity, definition, first, END, periods, watermark)
        assert {"cohorts": body["cohorts"]} == want, (asked, periods)
        assert body["as_of"] == len(history)
    months = get(client, "/v1/value/ltv", **{"from": early, "to": END})
    defaults = {"granularity": "month", "cohort": "first_seen", "from": early, "to": END}
    assert months == get(client, "/v1/value/ltv", **defaults)  # month, first_seen, to the range's end
    assert [c["cohort"] for c in months["cohorts"]] == ["2025-01", "2025-03", "2025-04"]
    assert all(set(c["currencies"]) == {"EUR", "GBP"} for c in months["cohorts"][:2])

    listed = get(client, "/v1/campaigns")
    assert {"campaigns": listed["campaigns"]} == reference.campaigns(history)
    assert listed["as_of"] == len(history)
    assert [c["campaign_id"] for c in listed["campaigns"]] == [
        "c-empty",
        "c-spring",
        "demo-spring",
        "c-loyalty",
    ]
    for campaign_id in ("c-spring", "c-loyalty", "c-empty", "demo-spring"):
        body = get(client, f"/v1/campaigns/{campaign_id}/effect")
        want = reference.campaign_effect(history, campaign_id, watermark)
        assert {k: body[k] for k in want} == want, campaign_id
        assert body["watermark"] == watermark.isoformat().replace("+00:00", "Z")
    spring = get(client, "/v1/campaigns/c-spring/effect")
    assert spring["campaign"]["ended"] and spring["campaign"]["members"] == {"treatment": 41, "control": 40}
    assert spring["groups"]["treatment"]["coupons_redeemed"] > 0
    assert spring["groups"]["control"]["coupons_redeemed"] == 0
    assert set(spring["uplift"]["net_revenue_30d"]) == {"EUR", "GBP"}

    for granularity, first, last in (
        ("month", START, END),
        ("week", START, END),
        ("week", date(2025, 3, 12), date(2025, 4, 15)),
    ):
        body = get(client, "/v1/service/satisfaction", granularity=granularity, **{"from": first, "to": last})
        want = reference.satisfaction(history, granularity, first, last, watermark)
        assert {k: body[k] for k in want} == want, (granularity, first, last)
    assert get(client, "/v1/service/satisfaction", **dates)["granularity"] == "month"

    for first, last in (
        (START, END),
        (date(2025, 4, 1), date(2025, 4, 14)),
        (date(2025, 3, 20), date(2025, 4, 30)),
        (date(2025, 1, 1), date(2025, 1, 31)),
        (date(2025, 1, 20), date(2025, 2, 28)),
    ):
        body = get(client, "/v1/overview", **{"from": first, "to": last})
        want = reference.overview(history, first, last, watermark)
        assert {k: body[k] for k in want} == want, (first, last)
        assert body["as_of"] == len(history)
    january = get(client, "/v1/overview", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert set(january["value"]["ltv_90d"]) == {"EUR", "GBP"}
    assert january["quality"]["retention_d30"] is not None
    assert january["previous"]["scale"]["active_users"] == 0


def test_a_late_enrolment_counts_and_one_after_the_end_is_refused(client, levers_history):
    spring = [e for e in levers_history if e.data.get("campaign_id") == "c-spring"]
    late = next(e for e in spring if e.type == "CampaignEnrolled" and e.user_id == "u0090")
    ended = next(e for e in spring if e.type == "CampaignEnded")
    assert late.position > ended.position and late.occurred_at < ended.occurred_at
    after_end = event(
        "CampaignEnrolled", "u0091", at("2025-04-10", 1), campaign_id="c-spring", group="control"
    )
    response = client.post("/v1/events", json={"events": [after_end]}, headers=PRODUCER)
    assert response.status_code == 409
    assert response.json["error"]["details"][0]["code"] == "campaign_ended"
    listed = {c["campaign_id"]: c for c in get(client, "/v1/campaigns")["campaigns"]}
    assert listed["c-spring"]["members"] == {"treatment": 41, "control": 40}


def test_an_unknown_campaign_is_not_found(client, system):
    for campaign_id, code in (
        ("nope", "campaign_not_found"),
        ("c%20spring", "campaign_not_found"),
        ("%00", "not_found"),
    ):
        response = client.get(f"/v1/campaigns/{campaign_id}/effect", headers=READER)
        assert response.status_code == 404, campaign_id
        assert response.json["error"]["code"] == code, campaign_id  # no key holds NUL: routing says so
    assert get(client, "/v1/campaigns")["campaigns"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/value/ltv", {"granularity": "day", "from": "2025-03-01", "to": "2025-04-01"}, "granularity"),
        ("/v1/value/ltv", {"cohort": "tool:check_in", "from": "2025-03-01", "to": "2025-04-01"}, "cohort"),
        ("/v1/value/ltv", {"periods": "-1", "from": "2025-03-01", "to": "2025-04-01"}, "periods"),
        ("/v1/value/ltv", {"periods": "two", "from": "2025-03-01", "to": "2025-04-01"}, "periods"),
        ("/v1/value/ltv", {"periods": "121", "from": "2025-03-01", "to": "2025-04-01"}, "periods"),
        (
            "/v1/value/ltv",
            {"granularity": "week", "periods": "261", "from": "2025-03-01", "to": "2025-04-01"},
            "periods",
        ),
        ("/v1/value/ltv", {"to": "2025-04-01"}, "from"),
        ("/v1/value/ltv", {"from": "2025-03-01", "to": "2025-02-01"}, "to"),
        ("/v1/value/ltv", {"granularity": "week", "from": "2001-01-01", "to": "2025-04-01"}, "to"),
        ("/v1/campaigns", {"colour": "red"}, "colour"),
        ("/v1/campaigns", {"wait_ms": "20000"}, "wait_ms"),
        ("/v1/campaigns/c-spring/effect", {"min_position": "-1"}, "min_position"),
        ("/v1/campaigns/c-spring/effect", {"from": "2025-03-01"}, "from"),
        (
            "/v1/service/satisfaction",
            {"granularity": "day", "from": "2025-03-01", "to": "2025-04-01"},
            "granularity",
        ),
        ("/v1/service/satisfaction", {"from": "2025-03-01"}, "to"),
        ("/v1/service/satisfaction", {"from": "2025-03-01", "to": "2025-02-28"}, "to"),
        ("/v1/service/satisfaction", {"from": "2025-3-1", "to": "2025-04-01"}, "from"),
        ("/v1/overview", {"to": "2025-04-01"}, "from"),
        ("/v1/overview", {"from": "2025-03-01", "to": "2025-02-28"}, "to"),
        ("/v1/overview", {"from": "2001-01-01", "to": "2025-04-01"}, "to"),
        ("/v1/overview", {"from": "0001-01-10", "to": "0001-01-20"}, "from"),  # no period before it
        ("/v1/overview", {"from": "2025-03-01", "to": "2025-04-01", "granularity": "week"}, "granularity"),
    ],
)
def test_bad_lever_parameters_are_named(client, path, params, field):
    response = client.get(path, query_string=params, headers=READER)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "hour", "from": "2025-03-01", "to": "2025-04-01"}, "granularity"),
        ({"to": "2025-04-01"}, "from"),
        ({"from": "2025-03-01", "to": "2025-02-01"}, "to"),
        ({"from": "2025-03-01", "to": "2025-04-01", "colour": "red"}, "colour"),
        ({"from": "2025-03-01", "to": "2025-04-01", "filter": "scene:casino"}, "filter"),
        ({"from": "2025-03-01", "to": "2025-04-01", "wait_ms": "20000"}, "wait_ms"),
        ({"from": "2001-01-01", "to": "2025-04-01", "granularity": "day"}, "to"),
        ({"from": "9999-12-31", "to": "9999-12-31", "granularity": "week"}, "to"),  # its week ends in 10000
        ({"from": "0001-01-01", "to": "0001-01-31", "granularity": "month"}, "from"),  # no month before
    ],
)
def test_bad_parameters_are_named(client, params, field):
    response = client.get("/v1/activity/active-users", query_string=params, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "year", "from": "2025-03-01", "to": "2025-04-01"}, "granularity"),
        ({"from": "2025-03-01", "to": "2025-02-28"}, "to"),
        ({"from": "2025-03-01"}, "to"),
    ],
)
def test_bad_revenue_parameters_are_named(client, params, field):
    response = client.get("/v1/value/revenue", query_string=params, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field


def test_analytics_need_the_reader_role(client):
    params = {"from": "2025-03-01", "to": "2025-04-01"}
    for path in (
        "/v1/retention/cohorts",
        "/v1/value/ltv",
        "/v1/campaigns",
        "/v1/campaigns/c1/effect",
        "/v1/service/satisfaction",
        "/v1/overview",
        "/v1/features",
        "/v1/features/tool:check_in/impact",
    ):
        asked = {} if path.startswith("/v1/campaigns") else params
        assert client.get(path, query_string=asked).status_code == 401, path
        assert client.get(path, query_string=asked, headers=PRODUCER).status_code == 403, path


def all_pages(client, **params) -> list[dict]:
    found, after = [], None
    while True:
        body = get(client, "/v1/users/search", size=100, **params, **({"after": after} if after else {}))
        found += body["users"]
        after = body["next"]
        if after is None:
            return found


def test_search_by_lifecycle_agrees_with_each_users_state(client, history):
    everyone = all_pages(client)
    assert len(everyone) == len({e.user_id for e in history if e.user_id})
    states = {u["user_id"]: u["lifecycle"] for u in everyone}
    assert set(states.values()) >= {"active", "at_risk"}
    for state in ("new", "active", "resurrected", "at_risk", "churned"):
        found = {u["user_id"] for u in all_pages(client, lifecycle=state)}
        assert found == {u for u, s in states.items() if s == state}, state
    one = next(iter(states))
    assert get(client, f"/v1/users/{one}")["lifecycle"] == states[one]


def test_every_customers_rfm_and_segment_search_equal_the_definitions(client, history):
    watermark = max(e.occurred_at for e in history)
    want = reference.rfm(history, watermark)
    everyone = {u["user_id"]: u for u in all_pages(client)}
    for user_id, user in everyone.items():
        rfm = want.get(user_id)
        assert user["segment"] == (rfm["segment"] if rfm else None), user_id
        if rfm is not None:
            shown = {k: user["rfm"][k] for k in ("recency_days", "frequency", "r", "f", "m", "segment")}
            assert shown == {k: rfm[k] for k in shown}, user_id
    assert len({rfm["segment"] for rfm in want.values()}) >= 3
    for segment in reference.RFM_SEGMENTS.values():
        found = {u["user_id"] for u in all_pages(client, segment=segment)}
        assert found == {u for u, rfm in want.items() if rfm["segment"] == segment}, segment
    one = next(iter(want))
    assert get(client, f"/v1/users/{one}")["rfm"]["segment"] == want[one]["segment"]
    response = client.get("/v1/users/search", query_string={"segment": "whales"}, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == "segment"
