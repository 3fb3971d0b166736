"""The reference's scene and tool metrics (metrics.md "Scenes and tools") over small histories whose
every expected number is worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tests import reference
from tests.reference import Event


def history(*rows: tuple[Any, ...]) -> list[Event]:
    """(type, user, occurred_at, data?) rows as events at positions 1..n, in the order they arrived;
    amounts as Decimals, as the reference reads them."""
    events = []
    for position, (type_, user, at, *rest) in enumerate(rows, start=1):
        data = {k: Decimal(v) if k == "amount" else v for k, v in (rest[0] if rest else {}).items()}
        events.append(Event(position, type_, user, datetime.fromisoformat(at), data))
    return events


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def tool(name: str) -> dict[str, str]:
    return {"tool": name}


def scene(name: str) -> dict[str, str]:
    return {"scene": name}


def placed(order_id: str, amount: str, currency: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "currency": currency}


def paid(order_id: str, amount: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount}


# Feature report over [2011-01-03, 2011-01-31]; the watermark is the last event, Feb 1 12:00.

REPORT_ROWS: tuple[tuple[Any, ...], ...] = (
    ("SceneVisited", "u2", "2010-12-20T10:00:00Z", scene("social")),  # used before the range only
    ("SessionStarted", "u4", "2011-01-05T08:00:00Z"),
    ("SceneVisited", "u4", "2011-01-06T08:00:00Z", scene("content")),
    ("SceneVisited", "u5", "2011-01-07T08:00:00Z", scene("content")),
    ("ToolUsed", "u1", "2011-01-10T00:00:00Z", tool("check_in")),
    ("ToolUsed", "u2", "2011-01-10T00:00:00Z", tool("check_in")),
    ("SceneVisited", "u1", "2011-01-12T09:00:00Z", scene("shopping")),
    ("SceneVisited", "u3", "2011-01-13T09:00:00Z", scene("shopping")),
    ("PointsEarned", "u6", "2011-01-15T09:00:00Z", {"points": 5}),  # not activity
    ("ToolUsed", "u2", "2011-01-16T23:59:59Z", tool("check_in")),  # 1 s short of day 7: no repeat
    ("ToolUsed", "u1", "2011-01-17T00:00:00Z", tool("check_in")),  # exactly day 7: a repeat
    ("ToolUsed", "u5", "2011-01-20T10:00:00Z", tool("check_in")),
    ("ToolUsed", "u3", "2011-01-28T12:00:00Z", tool("check_in")),  # + 7 days = Feb 4 12:00 > watermark
    ("SceneVisited", "u4", "2011-02-01T06:00:00Z", scene("content")),  # after the range: still a repeat
    ("ToolUsed", "u4", "2011-02-01T10:00:00Z", tool("wishlist")),  # used after the range only
    ("SessionStarted", "u4", "2011-02-01T12:00:00Z"),
)
LATE_EARLIER_USE = ("ToolUsed", "u5", "2010-12-30T10:00:00Z", tool("check_in"))
"""Arrives last, lies before u5's known first use: moves u5's adoption out of the range."""

START, END = date(2011, 1, 3), date(2011, 1, 31)


def test_feature_of_names_the_scene_or_tool() -> None:
    visit, use, session = history(REPORT_ROWS[2], REPORT_ROWS[4], REPORT_ROWS[1])
    assert reference.feature_of(visit) == "scene:content"
    assert reference.feature_of(use) == "tool:check_in"
    assert reference.feature_of(session) is None


def test_feature_report_without_the_late_use() -> None:
    events = history(*REPORT_ROWS)
    watermark = reference.watermark_of(events)
    assert watermark == utc("2011-02-01T12:00:00Z")
    # active in the range: u4, u5, u1, u2, u3 (u6 only earned points) = 5
    assert reference.features(events, START, END, watermark) == [
        {
            # uses in range: u1 x2, u2 x2, u5, u3 = 6 by 4 users, 4 / 5 = 0.8; all four adopted in it;
            # mature (Jan 10, Jan 10, Jan 20 + 7 days <= Feb 1 12:00; u3 not): u1 repeats on Jan 17
            # 00:00, u2 one second short, u5 never: 1 / 3
            "feature": "tool:check_in",
            "adopted": 4,
            "users": 4,
            "uses": 6,
            "share_of_active": 0.8,
            "repeat_7d": 0.3333,
        },
        {
            # u4 (Jan 6), u5 (Jan 7): both mature; u4 again on Feb 1 06:00 (after the range): 1 / 2
            "feature": "scene:content",
            "adopted": 2,
            "users": 2,
            "uses": 2,
            "share_of_active": 0.4,
            "repeat_7d": 0.5,
        },
        {
            # same users as scene:content: by name after it; nobody came back
            "feature": "scene:shopping",
            "adopted": 2,
            "users": 2,
            "uses": 2,
            "share_of_active": 0.4,
            "repeat_7d": 0.0,
        },
        # scene:social (before the range) and tool:wishlist (after it) are not listed
    ]


def test_an_earlier_use_arriving_late_moves_the_adoption() -> None:
    events = history(*REPORT_ROWS, LATE_EARLIER_USE)
    assert reference.adoptions(events, "tool:check_in")["u5"] == utc("2010-12-30T10:00:00Z")
    assert reference.cohort_dates(events, "tool:check_in")["u5"] == utc("2010-12-30T10:00:00Z")
    check_in = reference.features(events, START, END, reference.watermark_of(events))[0]
    # u5 still uses it in the range (Jan 20), but adopted it on Dec 30: no longer adopted in the range
    # nor among repeat_7d's adopters: u1 of u1, u2 = 1 / 2
    assert check_in == {
        "feature": "tool:check_in",
        "adopted": 3,
        "users": 4,
        "uses": 6,
        "share_of_active": 0.8,
        "repeat_7d": 0.5,
    }


def test_repeat_7d_counts_adopters_seven_days_before_the_watermark() -> None:
    adopting = ("ToolUsed", "u1", "2011-01-28T12:00:00Z", tool("check_in"))
    # the watermark 1 s before adoption + 7 days: nobody mature, so null
    early = history(adopting, ("SessionStarted", "u2", "2011-02-04T11:59:59Z"))
    assert reference.features(early, START, END, reference.watermark_of(early))[0]["repeat_7d"] is None
    # adoption + 7 days == the watermark: mature, and the use at that instant (after the range) repeats
    late = history(adopting, ("ToolUsed", "u1", "2011-02-04T12:00:00Z", tool("check_in")))
    assert reference.features(late, START, END, reference.watermark_of(late)) == [
        {
            "feature": "tool:check_in",
            "adopted": 1,
            "users": 1,
            "uses": 1,
            "share_of_active": 1.0,
            "repeat_7d": 1.0,
        }
    ]


def test_the_report_over_a_range_without_uses_is_empty() -> None:
    events = history(*REPORT_ROWS)
    assert (
        reference.features(events, date(2011, 3, 1), date(2011, 3, 31), reference.watermark_of(events)) == []
    )


# Feature impact of tool:check_in over [2011-01-01, 2011-01-31]; watermark Feb 15 00:00.

IMPACT = history(
    ("SessionStarted", "x", "2010-12-31T12:00:00Z"),  # first seen before the range
    ("ToolUsed", "x", "2011-01-01T12:00:00Z", tool("check_in")),
    ("SessionStarted", "a1", "2011-01-01T00:00:00Z"),
    ("OrderPlaced", "a1", "2011-01-05T10:00:00Z", placed("o-a1", "10.00", "GBP")),
    ("OrderPaid", "a1", "2011-01-05T10:01:00Z", paid("o-a1", "10.00")),
    ("ToolUsed", "a1", "2011-01-07T23:59:59Z", tool("check_in")),  # 1 s inside the 7 days: adopter
    ("SessionStarted", "a1", "2011-01-31T00:00:00Z"),  # exactly day 30: retained
    ("ToolUsed", "a2", "2011-01-02T00:00:00Z", tool("check_in")),  # first seen by adopting
    ("SessionStarted", "b1", "2011-01-01T00:00:00Z"),
    ("ToolUsed", "b1", "2011-01-08T00:00:00Z", tool("check_in")),  # exactly day 7: not an adopter
    ("OrderPlaced", "b1", "2011-01-30T23:59:59Z", placed("o-b1", "20.00", "GBP")),  # inside the 30 days
    ("OrderPaid", "b1", "2011-01-31T00:00:00Z", paid("o-b1", "20.00")),  # day 30: no revenue; retained
    ("SessionStarted", "b2", "2011-01-03T00:00:00Z"),
    ("OrderPlaced", "b2", "2011-01-04T10:00:00Z", placed("o-b2", "5.00", "EUR")),
    ("OrderPaid", "b2", "2011-01-04T10:01:00Z", paid("o-b2", "5.00")),
    ("OrderRefunded", "b2", "2011-01-10T10:00:00Z", paid("o-b2", "2.00")),  # net EUR 3.00
    ("ToolUsed", "c", "2011-01-20T00:00:00Z", tool("check_in")),  # + 30 days = Feb 19 > watermark
    ("PointsEarned", "b2", "2011-02-15T00:00:00Z", {"points": 1}),  # the watermark; not activity
)


def test_feature_impact_splits_at_seven_days_after_first_seen() -> None:
    watermark = reference.watermark_of(IMPACT)
    assert reference.feature_impact(
        IMPACT, "tool:check_in", date(2011, 1, 1), date(2011, 1, 31), watermark
    ) == {
        "feature": "tool:check_in",
        "groups": {
            # a1 retained and ordered (GBP 10.00), a2 neither; EUR seen among the others: 0 here
            "adopters": {
                "users": 2,
                "retained_d30": 0.5,
                "ordered_d30": 0.5,
                "net_revenue_d30": {"EUR": "0.00", "GBP": "5.00"},
            },
            # b1 retained (its OrderPaid on day 30 is activity) and ordered, no revenue inside the 30 days;
            # b2 not retained (points are not activity), ordered, EUR 3.00
            "others": {
                "users": 2,
                "retained_d30": 0.5,
                "ordered_d30": 1.0,
                "net_revenue_d30": {"EUR": "1.50", "GBP": "0.00"},
            },
        },
        "difference": {
            # 0.5 - 0.5 ± 1.959964 sqrt(0.25/2 + 0.25/2) = ± 0.979982
            "retained_d30": {"value": 0.0, "ci95": [-0.98, 0.98]},
            # 0.5 - 1 ± 1.959964 sqrt(0.25/2 + 0) = -0.5 ± 0.692951
            "ordered_d30": {"value": -0.5, "ci95": [-1.193, 0.193]},
            "net_revenue_d30": {
                # [0, 0] vs [0, 3]: -1.5 ± 1.959964 sqrt(0 + 4.5/2) = -1.5 ± 2.939946
                "EUR": {"value": "-1.50", "ci95": ["-4.44", "1.44"]},
                # [10, 0] vs [0, 0]: 5 ± 1.959964 sqrt(50/2 + 0) = 5 ± 9.79982
                "GBP": {"value": "5.00", "ci95": ["-4.80", "14.80"]},
            },
        },
        "note": "correlation, not causation",
    }


def test_feature_impact_of_a_feature_nobody_used() -> None:
    watermark = reference.watermark_of(IMPACT)
    got = reference.feature_impact(IMPACT, "tool:never", date(2011, 1, 1), date(2011, 1, 31), watermark)
    assert got["groups"] == {
        "adopters": {"users": 0, "retained_d30": None, "ordered_d30": None, "net_revenue_d30": {}},
        # a1, a2, b1, b2: retained a1, b1; ordered a1, b1, b2; GBP 10 / 4, EUR 3 / 4
        "others": {
            "users": 4,
            "retained_d30": 0.5,
            "ordered_d30": 0.75,
            "net_revenue_d30": {"EUR": "0.75", "GBP": "2.50"},
        },
    }
    nothing = {"value": None, "ci95": None}
    assert got["difference"] == {
        "retained_d30": nothing,
        "ordered_d30": nothing,
        "net_revenue_d30": {"EUR": nothing, "GBP": nothing},
    }


# Feature retention by ISO week over [2011-01-03, 2011-01-23]

RETAINED = history(
    ("SessionStarted", "u2", "2011-01-01T10:00:00Z"),  # first seen in the week of Dec 27
    ("ToolUsed", "u1", "2011-01-03T10:00:00Z", tool("check_in")),
    ("SceneVisited", "u4", "2011-01-04T10:00:00Z", scene("shopping")),
    ("ToolUsed", "u2", "2011-01-05T10:00:00Z", tool("check_in")),
    ("SessionStarted", "u1", "2011-01-11T10:00:00Z"),
    ("ToolUsed", "u2", "2011-01-12T10:00:00Z", tool("check_in")),
    ("ToolUsed", "u3", "2011-01-12T10:00:00Z", tool("check_in")),
    ("ToolUsed", "u1", "2011-01-18T10:00:00Z", tool("check_in")),
)
WEEKS = (date(2011, 1, 3), date(2011, 1, 23))


def retention(definition: str, returning: str, mode: str = "on") -> list[dict[str, Any]]:
    return reference.retention(
        RETAINED, "week", definition, returning, mode, *WEEKS, 2, reference.watermark_of(RETAINED)
    )


def test_a_feature_cohort_returning_to_the_feature_is_its_own_retention() -> None:
    # adopted in the week of Jan 3: u1, u2; of Jan 10: u3. Uses: week Jan 10 u2; week Jan 17 u1.
    # The watermark is Jan 18 10:00: the weeks of Jan 3 and Jan 10 ended before it.
    assert retention("tool:check_in", "tool:check_in") == [
        {
            "cohort": "2011-01-03",
            "size": 2,
            "values": [2, 1, 1],
            "rates": [1.0, 0.5, 0.5],
            "complete": [True, True, False],
        },
        # the week of Jan 24 starts after `to`
        {"cohort": "2011-01-10", "size": 1, "values": [1, 0], "rates": [1.0, 0.0], "complete": [True, False]},
    ]


def test_a_feature_cohort_returning_active_is_its_adopters_retention() -> None:
    # week Jan 10: u1 (session), u2 (tool); week Jan 17: u1
    assert retention("tool:check_in", "active")[0]["values"] == [2, 2, 1]


def test_a_first_seen_cohort_returning_to_a_feature() -> None:
    # first seen in the week of Jan 3: u1, u4 (u2 in the week before, u3 the week after)
    assert retention("first_seen", "tool:check_in")[0]["values"] == [2, 0, 1]
    assert retention("first_seen", "tool:check_in", "on_or_after")[0]["values"] == [2, 1, 1]
    assert retention("scene:shopping", "order") == [
        {
            "cohort": "2011-01-03",
            "size": 1,
            "values": [1, 0, 0],
            "rates": [1.0, 0.0, 0.0],
            "complete": [True, True, False],
        }
    ]
