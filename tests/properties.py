"""Shared property checks, run on SQLite in tests/unit and on PostgreSQL in tests/integration."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Engine, select

from projections.analytics import AnalyticsProjection
from projections.presenters import present_user
from projections.records import EventRecord
from projections.schema import metadata
from projections.users import users

BASE = datetime(2011, 1, 1, tzinfo=UTC)
USER_TYPES = [
    "SessionStarted",
    "UserRegistered",
    "OrderPlaced",
    "OrderPaid",
    "OrderRefunded",
    "MembershipChanged",
    "PointsEarned",
    "PointsRedeemed",
    "TicketOpened",
    "TicketResolved",
    "SceneVisited",
    "TicketReplied",
]


def _data(type_: str, draw: Any, position: int) -> dict[str, Any]:
    amount = Decimal(draw(st.integers(1, 100_000))) / 100
    return {
        "OrderPlaced": {"order_id": f"o{position}", "amount": amount, "currency": "EUR"},
        "OrderPaid": {"order_id": "o", "amount": amount},
        "OrderRefunded": {"order_id": "o", "amount": amount},
        "MembershipChanged": {"tier": draw(st.sampled_from(["silver", "gold"]))},
        "PointsEarned": {"points": draw(st.integers(1, 50))},
        "PointsRedeemed": {"points": draw(st.integers(1, 50))},
        "TicketOpened": {"ticket_id": "t"},
        "TicketResolved": {"ticket_id": "t"},
        "TicketReplied": {"ticket_id": "t", "by": draw(st.sampled_from(["agent", "customer"]))},
        "SceneVisited": {"scene": draw(st.sampled_from(["shopping", "social"]))},
        "ToolUsed": {"tool": draw(st.sampled_from(["check_in", "wishlist"]))},
    }.get(type_, {})


@st.composite
def event_histories(draw: Any, max_events: int = 40, days: int = 60) -> list[EventRecord]:
    """Events of a few users at random event times (ties included), positions 1..n."""
    count = draw(st.integers(1, max_events))
    events = []
    for position in range(1, count + 1):
        type_ = draw(st.sampled_from(USER_TYPES))
        context = {}
        if draw(st.booleans()):
            context["country"] = draw(st.sampled_from(["GB", "FR", "DE"]))
        if draw(st.booleans()):
            context["channel"] = draw(st.sampled_from(["app", "web"]))
        at = BASE + timedelta(hours=draw(st.integers(0, 24 * days)))
        events.append(
            EventRecord(
                position,
                type_,
                1,
                f"e{position}",
                "s",
                position,
                draw(st.sampled_from(["u1", "u2", "u3"])),
                at,
                at,
                context,
                _data(type_, draw, position),
            )
        )
    return events


@st.composite
def arrivals(draw: Any, events: list[EventRecord]) -> list[list[EventRecord]]:
    """The same events in any order, cut into batches of any sizes."""
    shuffled = draw(st.permutations(events))
    batches, start = [], 0
    while start < len(shuffled):
        size = draw(st.integers(1, len(shuffled) - start))
        batches.append(list(shuffled[start : start + size]))
        start += size
    return batches


def expected_users(events: list[EventRecord]) -> dict[str, dict[str, Any]]:
    """User state computed directly from the definitions in metrics.md, over the whole history."""
    by_user: dict[str, list[EventRecord]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e)
    out = {}
    for user_id, mine in by_user.items():

        def at(types: set[str], pick: Any, es: list[EventRecord] = mine) -> datetime | None:
            times = [e.occurred_at for e in es if e.type in types]
            return pick(times) if times else None

        def total(type_: str, field: str, es: list[EventRecord] = mine) -> Any:
            return sum((e.data[field] for e in es if e.type == type_), start=0)

        def latest(key: str, newest: bool, es: list[EventRecord] = mine) -> str | None:
            candidates = sorted((e.occurred_at, e.position, e.context[key]) for e in es if key in e.context)
            return (candidates[-1] if newest else candidates[0])[2] if candidates else None

        tiers = sorted(
            (e.occurred_at, e.position, e.data["tier"]) for e in mine if e.type == "MembershipChanged"
        )
        revenue = total("OrderPaid", "amount") - total("OrderRefunded", "amount")
        active_days = sorted({e.occurred_at.date() for e in mine if e.is_activity})
        returns_after_churn = [b for a, b in itertools.pairwise(active_days) if (b - a).days > 90]
        out[user_id] = {
            "user_id": user_id,
            "first_seen_at": min(e.occurred_at for e in mine),
            "signup_at": at({"UserRegistered"}, min),
            "first_order_at": at({"OrderPlaced"}, min),
            "last_active_at": max((e.occurred_at for e in mine if e.is_activity), default=None),
            "last_order_at": at({"OrderPlaced"}, max),
            "orders": sum(1 for e in mine if e.type == "OrderPlaced"),
            "net_revenue": int(revenue * 10_000),
            "points": total("PointsEarned", "points") - total("PointsRedeemed", "points"),
            "open_tickets": sum(1 for e in mine if e.type == "TicketOpened")
            - sum(1 for e in mine if e.type == "TicketResolved"),
            "country": latest("country", newest=True),
            "channel": latest("channel", newest=False),
            "tier": tiers[-1][2] if tiers else None,
            "last_position": max(e.position for e in mine),
            "resurrected_on": returns_after_churn[-1] if returns_after_churn else None,
        }
    return {k: present_user(v) for k, v in out.items()}


def clear_read_models(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def project(engine: Engine, batches: list[list[EventRecord]]) -> None:
    """Apply the batches, in their order, to emptied read models."""
    projection = AnalyticsProjection()
    clear_read_models(engine)
    for batch in batches:
        with engine.begin() as conn:
            projection.apply(conn, batch)


def projected_users(engine: Engine, batches: list[list[EventRecord]]) -> dict[str, dict[str, Any]]:
    project(engine, batches)
    with engine.connect() as conn:
        return {r["user_id"]: present_user(dict(r)) for r in conn.execute(select(users)).mappings()}
