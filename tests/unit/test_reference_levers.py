"""The reference's value, campaign, service and overview metrics over small histories whose every
expected number is worked out by hand from metrics.md (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tests import reference
from tests.reference import Event


def history(*rows: tuple[Any, ...]) -> list[Event]:
    """(type, user, occurred_at, data?) rows as events at positions 1..n, in the order they arrived;
    amounts and values as Decimals, as the reference reads them."""
    events = []
    for position, (type_, user, at, *rest) in enumerate(rows, start=1):
        data = {
            k: Decimal(v) if k in ("amount", "value") else v for k, v in (rest[0] if rest else {}).items()
        }
        events.append(Event(position, type_, user, datetime.fromisoformat(at), data))
    return events


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def placed(order_id: str, amount: str, currency: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "currency": currency}


def paid(order_id: str, amount: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount}


# Money


def test_money_is_rounded_half_even_to_two_places() -> None:
    assert reference.money2(Decimal("20.125")) == "20.12"
    assert reference.money2(Decimal("2.675")) == "2.68"
    assert reference.money2(Decimal("-1.005")) == "-1.00"
    assert reference.money2(Decimal("-0.004")) == "0.00"
    assert reference.money2(Fraction(997, 200)) == "4.98"  # 4.985
    assert reference.money2(Decimal(7)) == "7.00"


# Revenue

REVENUE = history(
    ("UserRegistered", "u1", "2011-01-03T09:00:00Z"),
    ("OrderPlaced", "u1", "2011-01-05T10:00:00Z", placed("o1", "100.00", "GBP")),
    ("OrderPaid", "u1", "2011-01-05T10:05:00Z", paid("o1", "100.00")),
    ("OrderPlaced", "u3", "2011-01-20T08:00:00Z", placed("o3", "15.00", "GBP")),
    ("OrderPaid", "u3", "2011-01-20T08:01:00Z", paid("o3", "15.00")),
    ("OrderCancelled", "u3", "2011-01-21T08:00:00Z", {"order_id": "o3"}),  # paid stays counted
    ("OrderPlaced", "u2", "2011-01-31T22:00:00-01:00", placed("o2", "20.125", "EUR")),  # Jan 31 23:00 UTC
    ("OrderPaid", "u2", "2011-01-31T23:30:00-01:00", paid("o2", "20.125")),  # Feb 1 00:30 UTC
    ("OrderRefunded", "u1", "2011-02-02T12:00:00Z", paid("o1", "30.00")),  # partial, not activity
    ("OrderPlaced", "u2", "2011-02-03T10:00:00Z", placed("o4", "7.50", "GBP")),
    ("OrderPaid", "u2", "2011-02-03T10:01:00Z", paid("o4", "7.50")),
    ("OrderRefunded", "u2", "2011-02-10T10:00:00Z", paid("o2", "20.125")),  # full
    ("OrderRefunded", "u1", "2011-03-15T10:00:00Z", paid("o1", "10.00")),  # a month of refunds only
)


def test_net_revenue_by_currency_takes_the_currency_of_the_order() -> None:
    mine = {u: [e for e in REVENUE if e.user_id == u] for u in ("u1", "u2", "u3")}
    # u1: 100 paid - 30 - 10 refunded
    assert reference.net_revenue_by_currency(mine["u1"]) == {"GBP": Decimal("60.00")}
    # only the February refund lies in [Feb 1, Mar 1)
    feb = (utc("2011-02-01T00:00:00Z"), utc("2011-03-01T00:00:00Z"))
    assert reference.net_revenue_by_currency(mine["u1"], *feb) == {"GBP": Decimal("-30.00")}
    assert reference.net_revenue_by_currency(mine["u1"], utc("2011-04-01T00:00:00Z")) == {}
    # u2: EUR 20.125 paid and refunded (listed, at 0); GBP 7.50 paid
    assert reference.net_revenue_by_currency(mine["u2"]) == {"EUR": Decimal(0), "GBP": Decimal("7.50")}
    # the refund's EUR comes from o2's OrderPlaced, outside the window
    window = (utc("2011-02-05T00:00:00Z"), None)
    assert reference.net_revenue_by_currency(mine["u2"], *window) == {"EUR": Decimal("-20.125")}
    # a cancelled order's payment counts
    assert reference.net_revenue_by_currency(mine["u3"]) == {"GBP": Decimal("15.00")}


def test_revenue_by_month() -> None:
    got = reference.revenue(REVENUE, "month", date(2011, 1, 10), date(2011, 3, 1))
    assert got == {
        "series": [
            {
                # whole month: o1 100.00 (Jan 5, before `from`) + o3 15.00; active u1, u2 (placed Jan 31
                # 23:00 UTC), u3: 115 / 3 = 38.333
                "period": "2011-01",
                "currencies": {
                    "GBP": {
                        "paid": "115.00",
                        "refunded": "0.00",
                        "net": "115.00",
                        "orders_paid": 2,
                        "arpu": "38.33",
                    }
                },
                "active_users": 3,
            },
            {
                # GBP: o4 7.50 paid, o1 30.00 refunded; EUR: o2 20.125 paid and refunded (half-even
                # 20.12); active: u2 only (a refund is not activity)
                "period": "2011-02",
                "currencies": {
                    "GBP": {
                        "paid": "7.50",
                        "refunded": "30.00",
                        "net": "-22.50",
                        "orders_paid": 1,
                        "arpu": "-22.50",
                    },
                    "EUR": {
                        "paid": "20.12",
                        "refunded": "20.12",
                        "net": "0.00",
                        "orders_paid": 1,
                        "arpu": "0.00",
                    },
                },
                "active_users": 1,
            },
            {
                # a refund alone: nobody active, so no ARPU
                "period": "2011-03",
                "currencies": {
                    "GBP": {
                        "paid": "0.00",
                        "refunded": "10.00",
                        "net": "-10.00",
                        "orders_paid": 0,
                        "arpu": None,
                    }
                },
                "active_users": 0,
            },
        ]
    }


def test_revenue_by_day_buckets_in_utc() -> None:
    got = reference.revenue(REVENUE, "day", date(2011, 1, 31), date(2011, 2, 1))
    assert got == {
        "series": [
            {"period": "2011-01-31", "currencies": {}, "active_users": 1},
            {
                "period": "2011-02-01",
                "currencies": {
                    "EUR": {
                        "paid": "20.12",
                        "refunded": "0.00",
                        "net": "20.12",
                        "orders_paid": 1,
                        "arpu": "20.12",
                    }
                },
                "active_users": 1,
            },
        ]
    }


# LTV by cohort

LTV = history(
    ("SessionStarted", "a", "2011-01-10T08:00:00Z"),
    ("OrderPlaced", "a", "2011-01-12T09:00:00Z", placed("oa1", "40.00", "GBP")),
    ("OrderPaid", "a", "2011-01-12T09:01:00Z", paid("oa1", "40.00")),
    ("UserRegistered", "b", "2011-01-20T10:00:00Z"),
    ("OrderPlaced", "b", "2011-01-25T10:00:00Z", placed("ob1", "20.01", "GBP")),
    ("OrderPlaced", "e", "2011-01-28T10:00:00Z", placed("oe1", "5.00", "GBP")),
    ("OrderPaid", "e", "2011-01-28T10:01:00Z", paid("oe1", "5.00")),
    ("OrderPlaced", "a", "2011-02-05T10:00:00Z", placed("oa2", "10.00", "EUR")),
    ("OrderPaid", "a", "2011-02-05T10:01:00Z", paid("oa2", "10.00")),
    ("UserRegistered", "c", "2011-02-14T10:00:00Z"),
    ("OrderPlaced", "c", "2011-02-14T10:05:00Z", placed("oc1", "9.97", "GBP")),
    ("OrderPaid", "c", "2011-02-14T10:06:00Z", paid("oc1", "9.97")),
    ("UserRegistered", "e", "2011-02-20T10:00:00Z"),
    ("OrderRefunded", "a", "2011-03-03T10:00:00Z", paid("oa1", "15.00")),
    ("OrderPlaced", "e", "2011-03-10T10:00:00Z", placed("oe2", "3.00", "GBP")),
    ("OrderPaid", "e", "2011-03-10T10:01:00Z", paid("oe2", "3.00")),
    ("OrderPaid", "b", "2011-03-31T12:00:00Z", paid("ob1", "20.01")),
)
LTV_WATERMARK = utc("2011-03-31T12:00:00Z")  # March has not ended


def test_ltv_by_first_seen_cohort() -> None:
    got = reference.ltv(LTV, "month", "first_seen", date(2011, 1, 1), date(2011, 3, 31), 3, LTV_WATERMARK)
    assert got == {
        "cohorts": [
            {
                # a, b, e. GBP: Jan 40 + 5 = 45 -> 15.00; Feb +0; Mar 45 - 15 + 3 + 20.01 = 53.01 -> 17.67.
                # EUR: Feb 10 / 3 = 3.333. Offset 3 (April) lies after `to`.
                "cohort": "2011-01",
                "size": 3,
                "currencies": {"GBP": ["15.00", "15.00", "17.67"], "EUR": ["0.00", "3.33", "3.33"]},
                "complete": [True, True, False],
            },
            {
                "cohort": "2011-02",
                "size": 1,
                "currencies": {"GBP": ["9.97", "9.97"]},
                "complete": [True, False],
            },
        ]
    }


def test_ltv_by_signup_cohort_leaves_out_revenue_before_the_cohort() -> None:
    got = reference.ltv(LTV, "month", "signup", date(2011, 1, 1), date(2011, 3, 31), 1, LTV_WATERMARK)
    assert got == {
        "cohorts": [
            # b pays only in March, after offset 1
            {"cohort": "2011-01", "size": 1, "currencies": {}, "complete": [True, True]},
            {
                # c, e; e's January 5.00 is before the cohort. Feb 9.97 / 2 = 4.985 -> 4.98 (half-even);
                # Mar (9.97 + 3.00) / 2 = 6.485 -> 6.48
                "cohort": "2011-02",
                "size": 2,
                "currencies": {"GBP": ["4.98", "6.48"]},
                "complete": [True, False],
            },
        ]
    }


def test_ltv_cells_after_to_are_left_out() -> None:
    got = reference.ltv(LTV, "month", "first_order", date(2011, 1, 1), date(2011, 2, 28), 2, LTV_WATERMARK)
    assert got == {
        "cohorts": [
            {
                "cohort": "2011-01",
                "size": 3,
                "currencies": {"GBP": ["15.00", "15.00"], "EUR": ["0.00", "3.33"]},
                "complete": [True, True],
            },
            {"cohort": "2011-02", "size": 1, "currencies": {"GBP": ["9.97"]}, "complete": [True]},
        ]
    }


# Campaigns

CAMPAIGNS = history(
    (
        "CampaignCreated",
        None,
        "2011-02-01T00:00:00Z",
        {"campaign_id": "k2", "name": "Welcome", "kind": "benefit", "starts_at": "2011-02-01T00:00:00Z"},
    ),
    (
        "CampaignCreated",
        None,
        "2011-02-20T00:00:00Z",
        {
            "campaign_id": "k1",
            "name": "Spring",
            "kind": "incentive",
            "starts_at": "2011-03-01T00:00:00+01:00",
            "ends_at": "2011-03-31T00:00:00Z",
        },
    ),
    ("OrderPlaced", "u4", "2011-03-01T09:00:00Z", placed("o4", "8.00", "GBP")),  # before enrolling
    ("OrderPaid", "u4", "2011-03-01T09:05:00Z", paid("o4", "8.00")),
    (
        "CouponIssued",
        "u5",
        "2011-03-02T00:00:00Z",
        {"coupon_id": "c3", "campaign_id": "k1", "value": "1.00", "currency": "GBP"},
    ),
    ("CampaignEnrolled", "u1", "2011-03-02T10:00:00Z", {"campaign_id": "k1", "group": "treatment"}),
    (
        "CouponIssued",
        "u1",
        "2011-03-02T11:00:00Z",
        {"coupon_id": "c1", "campaign_id": "k1", "value": "5.00", "currency": "GBP"},
    ),
    ("CampaignEnrolled", "u3", "2011-03-02T12:00:00Z", {"campaign_id": "k1", "group": "control"}),
    ("CampaignEnrolled", "u4", "2011-03-03T00:00:00Z", {"campaign_id": "k1", "group": "control"}),
    ("OrderPlaced", "u5", "2011-03-03T00:00:00Z", placed("o5", "1.00", "GBP")),
    ("CouponRedeemed", "u5", "2011-03-03T00:00:00Z", {"coupon_id": "c3", "order_id": "o5"}),  # not a member
    ("OrderPlaced", "u1", "2011-03-04T09:00:00Z", placed("o1", "30.00", "GBP")),
    ("CouponRedeemed", "u1", "2011-03-04T09:00:00Z", {"coupon_id": "c1", "order_id": "o1"}),
    ("OrderPaid", "u1", "2011-03-04T09:01:00Z", paid("o1", "30.00")),
    ("TicketOpened", "u4", "2011-03-05T08:00:00Z", {"ticket_id": "t1"}),  # before u4's day 7
    (
        "CouponIssued",
        "u2",
        "2011-03-05T11:00:00Z",
        {"coupon_id": "c2", "campaign_id": "k2", "value": "2.00", "currency": "EUR"},
    ),
    ("OrderPlaced", "u2", "2011-03-06T10:00:00Z", placed("o2", "12.00", "EUR")),
    (
        "CouponRedeemed",
        "u2",
        "2011-03-06T10:00:00Z",
        {"coupon_id": "c2", "order_id": "o2"},
    ),  # another campaign's
    ("OrderPaid", "u2", "2011-03-06T10:01:00Z", paid("o2", "12.00")),
    ("SessionStarted", "u1", "2011-03-09T10:00:00Z"),  # exactly day 7 after u1's enrolment
    ("OrderRefunded", "u4", "2011-03-10T00:00:00Z", paid("o4", "8.00")),  # full, inside u4's 30 days
    ("OrderPlaced", "u3", "2011-03-12T12:00:00Z", placed("o3", "50.00", "GBP")),  # day 10
    ("OrderPaid", "u3", "2011-03-12T12:01:00Z", paid("o3", "50.00")),
    ("OrderCancelled", "u3", "2011-03-13T09:00:00Z", {"order_id": "o3"}),
    ("OrderRefunded", "u1", "2011-03-20T00:00:00Z", paid("o1", "10.00")),  # partial
    ("CampaignEnded", None, "2011-04-01T00:00:00Z", {"campaign_id": "k1"}),
    ("SessionStarted", "u3", "2011-04-01T12:00:00Z"),  # exactly day 30 after u3's enrolment
    ("SessionStarted", "u2", "2011-04-10T00:00:00Z"),
    # arrives last, but happened before u2's order
    ("CampaignEnrolled", "u2", "2011-03-05T10:00:00Z", {"campaign_id": "k1", "group": "treatment"}),
)
SPRING = {
    "campaign_id": "k1",
    "name": "Spring",
    "kind": "incentive",
    "starts_at": "2011-02-28T23:00:00Z",
    "ends_at": "2011-03-31T00:00:00Z",
    "ended": True,
    "members": {"treatment": 2, "control": 2},
}
WELCOME = {
    "campaign_id": "k2",
    "name": "Welcome",
    "kind": "benefit",
    "starts_at": "2011-02-01T00:00:00Z",
    "ends_at": None,
    "ended": False,
    "members": {"treatment": 0, "control": 0},
}


def test_campaign_list_by_start() -> None:
    assert reference.campaigns(CAMPAIGNS) == {"campaigns": [WELCOME, SPRING]}


def test_campaign_effect() -> None:
    watermark = reference.watermark_of(CAMPAIGNS)
    assert watermark == utc("2011-04-10T00:00:00Z")
    got = reference.campaign_effect(CAMPAIGNS, "k1", watermark)
    # u1 (T, e Mar 2 10:00): ordered Mar 4; active Mar 9 10:00 (day 7), nothing from Apr 1 10:00;
    #   coupon c1 of k1; net 30 - 10 = GBP 20
    # u2 (T, e Mar 5 10:00): ordered Mar 6; active Apr 10 (after day 30); coupon c2 is k2's; EUR 12
    # u3 (C, e Mar 2 12:00): ordered Mar 12 12:00 (day 10); active Apr 1 12:00 (day 30); GBP 50
    #   (cancelled, still paid)
    # u4 (C, e Mar 3 00:00): ordered before e; active only Mar 5; paid before e, refunded Mar 10: GBP -8
    assert got == {
        "campaign": SPRING,
        "groups": {
            "treatment": {
                "members": 2,
                "ordered_7d": 1.0,
                "ordered_30d": 1.0,
                "active_after_7d": 1.0,
                "active_after_30d": 0.5,
                "coupons_redeemed": 1,
                "net_revenue_30d": {"GBP": "10.00", "EUR": "6.00"},  # (20 + 0) / 2, (0 + 12) / 2
            },
            "control": {
                "members": 2,
                "ordered_7d": 0.0,
                "ordered_30d": 0.5,
                "active_after_7d": 0.5,
                "active_after_30d": 0.5,
                "coupons_redeemed": 0,
                "net_revenue_30d": {"GBP": "21.00", "EUR": "0.00"},  # (50 - 8) / 2; no EUR: 0
            },
        },
        "uplift": {
            # 1 - 0, se = 0
            "ordered_7d": {"value": 1.0, "ci95": [1.0, 1.0]},
            # 1 - 0.5, se = sqrt(0 + 0.25 / 2) = 0.353553; 1.959964 se = 0.692952
            "ordered_30d": {"value": 0.5, "ci95": [-0.193, 1.193]},
            "active_after_7d": {"value": 0.5, "ci95": [-0.193, 1.193]},
            # 0.5 - 0.5, se = sqrt(0.125 + 0.125) = 0.5; 1.959964 se = 0.979982
            "active_after_30d": {"value": 0.0, "ci95": [-0.98, 0.98]},
            "net_revenue_30d": {
                # 10 - 21 = -11; s1² = (10² + 10²) / 1 = 200, s0² = (29² + 29²) / 1 = 1682;
                # se = sqrt(200 / 2 + 1682 / 2) = sqrt(941) = 30.675723; 1.959964 se = 60.123313
                "GBP": {"value": "-11.00", "ci95": ["-71.12", "49.12"]},
                # 6 - 0; s1² = (6² + 6²) / 1 = 72, s0² = 0; se = sqrt(36) = 6; 1.959964 se = 11.759784
                "EUR": {"value": "6.00", "ci95": ["-5.76", "17.76"]},
            },
        },
        "complete_7d": True,
        "complete_30d": True,  # u2's e + 30 days = Apr 4 10:00
    }


def test_campaign_effect_completeness_waits_for_the_latest_enrolment() -> None:
    got = reference.campaign_effect(CAMPAIGNS, "k1", utc("2011-04-04T09:59:59Z"))
    assert got is not None
    assert (got["complete_7d"], got["complete_30d"]) == (True, False)


def test_campaign_effect_of_an_unknown_campaign_is_none() -> None:
    assert reference.campaign_effect(CAMPAIGNS, "k9", reference.watermark_of(CAMPAIGNS)) is None


def test_campaign_without_members() -> None:
    got = reference.campaign_effect(CAMPAIGNS, "k2", reference.watermark_of(CAMPAIGNS))
    nobody = {
        "members": 0,
        "ordered_7d": None,
        "ordered_30d": None,
        "active_after_7d": None,
        "active_after_30d": None,
        "coupons_redeemed": 0,  # u2 redeemed a k2 coupon, but is no member of k2
        "net_revenue_30d": {},
    }
    unknown = {"value": None, "ci95": None}
    assert got == {
        "campaign": WELCOME,
        "groups": {"treatment": nobody, "control": nobody},
        "uplift": {
            "ordered_7d": unknown,
            "ordered_30d": unknown,
            "active_after_7d": unknown,
            "active_after_30d": unknown,
            "net_revenue_30d": {},
        },
        "complete_7d": True,
        "complete_30d": True,
    }


# Intervals at their edges

EDGES = history(
    (
        "CampaignCreated",
        None,
        "2011-01-01T00:00:00Z",
        {"campaign_id": "k3", "name": "One", "kind": "activity", "starts_at": "2011-01-01T00:00:00Z"},
    ),
    (
        "CampaignCreated",
        None,
        "2011-01-01T00:00:00Z",
        {"campaign_id": "k4", "name": "All", "kind": "activity", "starts_at": "2011-01-01T00:00:00Z"},
    ),
    ("CampaignEnrolled", "a", "2011-01-02T00:00:00Z", {"campaign_id": "k3", "group": "treatment"}),
    ("CampaignEnrolled", "b", "2011-01-02T00:00:00Z", {"campaign_id": "k3", "group": "control"}),
    ("CampaignEnrolled", "c", "2011-01-02T00:00:00Z", {"campaign_id": "k3", "group": "control"}),
    ("CampaignEnrolled", "a", "2011-01-02T00:00:00Z", {"campaign_id": "k4", "group": "treatment"}),
    ("CampaignEnrolled", "b", "2011-01-02T00:00:00Z", {"campaign_id": "k4", "group": "treatment"}),
    ("OrderPlaced", "a", "2011-01-03T00:00:00Z", placed("oa", "5.00", "GBP")),
    ("OrderPaid", "a", "2011-01-03T00:00:00Z", paid("oa", "5.00")),
    ("OrderPlaced", "b", "2011-01-04T00:00:00Z", placed("ob", "4.00", "EUR")),
    ("OrderPaid", "b", "2011-01-04T00:00:00Z", paid("ob", "4.00")),
)


def test_a_group_of_one_has_no_interval_and_lists_both_currencies() -> None:
    got = reference.campaign_effect(EDGES, "k3", reference.watermark_of(EDGES))
    assert got is not None
    # treatment a: GBP 5; control b: EUR 4, c: nothing
    assert got["groups"]["treatment"]["net_revenue_30d"] == {"GBP": "5.00", "EUR": "0.00"}
    assert got["groups"]["control"]["net_revenue_30d"] == {"GBP": "0.00", "EUR": "2.00"}
    assert got["uplift"] == {
        "ordered_7d": {"value": 0.5, "ci95": None},  # 1 - 1/2
        "ordered_30d": {"value": 0.5, "ci95": None},
        "active_after_7d": {"value": 0.0, "ci95": None},
        "active_after_30d": {"value": 0.0, "ci95": None},
        "net_revenue_30d": {
            "GBP": {"value": "5.00", "ci95": None},
            "EUR": {"value": "-2.00", "ci95": None},
        },
    }


def test_an_empty_group_has_no_difference() -> None:
    got = reference.campaign_effect(EDGES, "k4", reference.watermark_of(EDGES))
    assert got is not None
    assert got["groups"]["treatment"]["net_revenue_30d"] == {"GBP": "2.50", "EUR": "2.00"}
    assert got["groups"]["control"]["net_revenue_30d"] == {}
    assert got["uplift"]["ordered_7d"] == {"value": None, "ci95": None}
    assert got["uplift"]["net_revenue_30d"] == {
        "GBP": {"value": None, "ci95": None},
        "EUR": {"value": None, "ci95": None},
    }


def test_a_currency_absent_from_one_group_counts_as_a_mean_of_zero() -> None:
    got = reference.campaign_effect(CAMPAIGNS, "k1", reference.watermark_of(CAMPAIGNS))
    assert got is not None
    # control has no EUR: its mean is 0 with no variance, so se = sqrt(72 / 2) = 6
    assert got["groups"]["control"]["net_revenue_30d"]["EUR"] == "0.00"
    assert got["uplift"]["net_revenue_30d"]["EUR"] == {"value": "6.00", "ci95": ["-5.76", "17.76"]}


def test_a_share_difference_is_rounded_only_at_the_end() -> None:
    # 1/3 - 1/6 = 0.16667 (rounded shares would give 0.3333 - 0.1667 = 0.1666);
    # se² = (1/3 · 2/3) / 3 + (1/6 · 5/6) / 6 = 2/27 + 5/216 = 21/216, se = 0.311805,
    # 1.959964 se = 0.611126: [-0.44446, 0.77779]
    got = reference.share_difference([True, False, False], [True, False, False, False, False, False])
    assert got == {"value": 0.1667, "ci95": [-0.4445, 0.7778]}


# Customer service

SERVICE = history(
    ("TicketOpened", "u1", "2011-01-03T09:00:00Z", {"ticket_id": "t1"}),
    ("TicketReplied", "u1", "2011-01-03T10:00:00Z", {"ticket_id": "t1", "by": "customer"}),
    ("TicketReplied", "u1", "2011-01-03T11:30:00Z", {"ticket_id": "t1", "by": "agent"}),  # 2.5 h
    ("TicketOpened", "u2", "2011-01-04T12:00:00+02:00", {"ticket_id": "t2"}),  # 10:00 UTC
    ("TicketReplied", "u2", "2011-01-04T10:20:00Z", {"ticket_id": "t2", "by": "agent"}),  # 0.3333 h
    ("TicketResolved", "u1", "2011-01-05T09:00:00Z", {"ticket_id": "t1"}),  # 48 h
    ("SatisfactionRated", "u1", "2011-01-05T10:00:00Z", {"score": 5, "ticket_id": "t1"}),
    ("SatisfactionRated", "u2", "2011-01-06T12:00:00Z", {"score": 2}),
    ("TicketOpened", "u3", "2011-01-09T23:00:00Z", {"ticket_id": "t3"}),  # Sunday
    ("TicketReplied", "u3", "2011-01-10T01:00:00Z", {"ticket_id": "t3", "by": "agent"}),  # 2 h
    ("TicketReplied", "u1", "2011-01-10T02:00:00Z", {"ticket_id": "t1", "by": "agent"}),  # not the first
    ("TicketResolved", "u3", "2011-01-10T05:00:00Z", {"ticket_id": "t3"}),  # 6 h
    ("TicketResolved", "u2", "2011-01-10T10:00:00Z", {"ticket_id": "t2"}),  # 144 h
    ("SatisfactionRated", "u3", "2011-01-10T06:00:00Z", {"score": 4}),
    ("TicketOpened", "u1", "2011-01-12T08:00:00Z", {"ticket_id": "t4"}),  # never resolved
    ("TicketReplied", "u1", "2011-01-12T09:00:00Z", {"ticket_id": "t4", "by": "customer"}),
    ("SatisfactionRated", "u2", "2011-01-12T09:00:00Z", {"score": 4}),
    ("SatisfactionRated", "u1", "2011-01-13T09:00:00Z", {"score": 3}),
    ("SatisfactionRated", "u3", "2011-01-18T00:00:00Z", {"score": 1}),  # the day after `to`
    ("SessionStarted", "u1", "2011-02-04T10:00:00Z"),  # exactly day 30 after u1's 5
    ("SessionStarted", "u2", "2011-02-10T00:00:00Z"),
)


def test_satisfaction_by_week() -> None:
    watermark = reference.watermark_of(SERVICE)  # Feb 10 00:00
    got = reference.satisfaction(SERVICE, "week", date(2011, 1, 3), date(2011, 1, 17), watermark)
    assert got == {
        "series": [
            {
                # opened t1, t2, t3; resolved t1 (48 h); first responses 2.5 and 0.3333: median 1.4167
                "period": "2011-01-03",
                "opened": 3,
                "resolved": 1,
                "median_resolution_hours": 48.0,
                "p90_resolution_hours": 48.0,
                "median_first_response_hours": 1.42,
                "ratings": 2,
                "avg_score": 3.5,  # (5 + 2) / 2
                "csat": 0.5,
            },
            {
                # opened t4; resolved t3 (6 h), t2 (144 h): median 75, p90 6 + 0.9 · 138 = 130.2;
                # first response t3 (2 h) only
                "period": "2011-01-10",
                "opened": 1,
                "resolved": 2,
                "median_resolution_hours": 75.0,
                "p90_resolution_hours": 130.2,
                "median_first_response_hours": 2.0,
                "ratings": 3,
                "avg_score": 3.6667,  # (4 + 4 + 3) / 3
                "csat": 0.6667,
            },
            {
                # the whole week counts, the rating of Jan 18 too
                "period": "2011-01-17",
                "opened": 0,
                "resolved": 0,
                "median_resolution_hours": None,
                "p90_resolution_hours": None,
                "median_first_response_hours": None,
                "ratings": 1,
                "avg_score": 1.0,
                "csat": 0.0,
            },
        ],
        "retention_by_score": [
            # u2's 2 (Jan 6 12:00) is mature (Feb 5 12:00) and u2 is back Feb 10
            {"bucket": "1-2", "ratings": 1, "mature": 1, "retained_30d": 1.0},
            # u1's 3 (Jan 13) matures Feb 12, after the watermark
            {"bucket": "3", "ratings": 1, "mature": 0, "retained_30d": None},
            # 5 (u1, Jan 5 10:00, back Feb 4 10:00), 4 (u3, Jan 10, never back), 4 (u2, Jan 12, not mature)
            {"bucket": "4-5", "ratings": 3, "mature": 2, "retained_30d": 0.5},
        ],
    }


def test_satisfaction_by_month() -> None:
    watermark = reference.watermark_of(SERVICE)
    got = reference.satisfaction(SERVICE, "month", date(2011, 1, 3), date(2011, 1, 17), watermark)
    assert got["series"] == [
        {
            # resolutions [6, 48, 144]: p90 rank 1.8 -> 48 + 0.8 · 96 = 124.8;
            # first responses [0.3333, 2, 2.5]; scores 5 2 4 4 3 1: 19 / 6 = 3.1667, csat 3 / 6
            "period": "2011-01",
            "opened": 4,
            "resolved": 3,
            "median_resolution_hours": 48.0,
            "p90_resolution_hours": 124.8,
            "median_first_response_hours": 2.0,
            "ratings": 6,
            "avg_score": 3.1667,
            "csat": 0.5,
        }
    ]


# Overview

OVERVIEW = history(
    ("SessionStarted", "u1", "2011-01-15T10:00:00Z"),
    ("UserRegistered", "u5", "2011-01-22T09:00:00Z"),
    ("TicketOpened", "u5", "2011-01-22T09:30:00Z", {"ticket_id": "t5"}),  # never answered
    ("UserRegistered", "u1", "2011-01-25T10:00:00Z"),
    ("OrderPlaced", "u1", "2011-01-26T10:00:00Z", placed("o1", "25.00", "GBP")),
    ("OrderPaid", "u1", "2011-01-26T10:01:00Z", paid("o1", "25.00")),
    ("UserRegistered", "u2", "2011-01-28T10:00:00Z"),
    ("OrderPlaced", "u2", "2011-02-02T10:00:00Z", placed("o3", "40.00", "EUR")),
    ("OrderPaid", "u2", "2011-02-02T10:01:00Z", paid("o3", "40.00")),
    ("SessionStarted", "u1", "2011-02-03T10:00:00Z"),
    ("OrderPlaced", "u1", "2011-02-04T10:00:00Z", placed("o2", "10.00", "GBP")),
    ("OrderPaid", "u1", "2011-02-04T10:01:00Z", paid("o2", "10.00")),
    ("UserRegistered", "u3", "2011-02-05T13:00:00+01:00"),  # 12:00 UTC
    ("SatisfactionRated", "u2", "2011-02-05T10:00:00Z", {"score": 4}),
    ("OrderRefunded", "u1", "2011-02-06T10:00:00Z", paid("o2", "10.00")),  # full
    ("SatisfactionRated", "u3", "2011-02-06T10:00:00Z", {"score": 2}),
    ("SessionStarted", "u4", "2011-02-08T10:00:00Z"),
    ("OrderPlaced", "u2", "2011-02-09T10:00:00Z", placed("o4", "5.00", "EUR")),
    ("OrderCancelled", "u2", "2011-02-09T11:00:00Z", {"order_id": "o4"}),
    ("OrderPlaced", "u3", "2011-03-01T12:00:00Z", placed("o5", "12.00", "GBP")),
    ("OrderPaid", "u3", "2011-03-01T12:01:00Z", paid("o5", "12.00")),
    ("SessionStarted", "u2", "2011-03-05T10:00:00Z"),
    ("SessionStarted", "u4", "2011-05-15T00:00:00Z"),
)
NOTHING = {
    "scale": {"active_users": 0, "new_users": 0, "retained_users": 0, "orders": 0},
    "efficiency": {"activation_rate": None, "repurchase_rate": None},
    "quality": {"retention_d30": None, "csat": None},
    "value": {"net_revenue": {}, "arpu": {}, "ltv_90d": {}},
}


def test_overview_and_the_period_before() -> None:
    watermark = reference.watermark_of(OVERVIEW)  # May 15
    got = reference.overview(OVERVIEW, date(2011, 2, 1), date(2011, 2, 10), watermark)
    assert got == {
        # Feb 1-10, before it Jan 22-31
        "scale": {
            "active_users": 4,  # u1, u2, u3, u4
            "new_users": 2,  # u3, u4
            "retained_users": 2,  # u1, u2 were active Jan 22-31
            "orders": 3,  # o3, o2, o4 (cancelled, still placed)
        },
        "efficiency": {
            "activation_rate": 1.0,  # u3 signed up Feb 5 12:00, ordered Mar 1
            "repurchase_rate": 0.5,  # u2 placed 2, u1 placed 1
        },
        "quality": {
            "retention_d30": 0.5,  # u4 back May 15; u3 last active Mar 1, before Mar 7 12:00
            "csat": 0.5,  # 4 and 2
        },
        "value": {
            "net_revenue": {"GBP": "0.00", "EUR": "40.00"},  # o2 paid and refunded; o3
            "arpu": {"GBP": "0.00", "EUR": "10.00"},  # over 4 active users
            "ltv_90d": {"GBP": "6.00"},  # u3 12.00, u4 nothing
        },
        "previous": {
            # Jan 22-31, before it Jan 12-21
            "scale": {
                "active_users": 3,  # u5, u1, u2
                "new_users": 2,  # u5, u2 (u1 first seen Jan 15)
                "retained_users": 1,  # u1
                "orders": 1,
            },
            "efficiency": {
                "activation_rate": 0.6667,  # u1 (Jan 26), u2 (Feb 2) of u5, u1, u2
                "repurchase_rate": 0.0,
            },
            "quality": {
                "retention_d30": 0.5,  # u2 back Mar 5; u5 never
                "csat": None,
            },
            "value": {
                "net_revenue": {"GBP": "25.00"},
                "arpu": {"GBP": "8.33"},  # 25 / 3
                "ltv_90d": {"EUR": "20.00"},  # u2 40, u5 nothing
            },
        },
    }


def test_overview_near_the_start_of_time() -> None:
    watermark = reference.watermark_of(OVERVIEW)
    got = reference.overview(OVERVIEW, date(2011, 1, 12), date(2011, 1, 21), watermark)
    assert got == {
        "scale": {"active_users": 1, "new_users": 1, "retained_users": 0, "orders": 0},
        "efficiency": {"activation_rate": None, "repurchase_rate": None},
        # u1 first seen Jan 15 10:00, last active Feb 4
        "quality": {"retention_d30": 0.0, "csat": None},
        # u1 within 90 days: 25 + 10 - 10
        "value": {"net_revenue": {}, "arpu": {}, "ltv_90d": {"GBP": "25.00"}},
        "previous": NOTHING,
    }
