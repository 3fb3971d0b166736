"""The metric definitions of metrics.md computed directly over a whole history of events: what every
incremental read model must equal.

Written from the contract alone (metrics.md, events.md) and sharing nothing with the code it checks:
it imports only the standard library (tests/unit/test_reference_imports.py keeps it so), buckets
time itself, knows the activity types from events.md, reads its own `Event`, and presents answers in
the shapes the API gives, so that they compare equal."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

ACTIVITY_TYPES = frozenset(
    {
        "UserRegistered",
        "SessionStarted",
        "SceneVisited",
        "ToolUsed",
        "PointsRedeemed",
        "OrderPlaced",
        "OrderPaid",
        "CouponRedeemed",
        "TicketOpened",
        "SatisfactionRated",
        "EventTracked",
    }
)
"""events.md: the types marked as user-initiated (activity); TicketReplied is activity only when
`by` is `customer`."""

SYSTEM_TYPES = frozenset({"PersonalDataErased"})
"""events.md "Erasure": recorded by the system; the analytics counts stay as they were."""

CHURN_DAYS = 90
"""metrics.md "User state": churned after 90 days without activity (the default)."""


@dataclass(frozen=True)
class Event:
    """One event as its envelope gives it, with its place in the log. `occurred_at` is aware, in any
    offset; amounts in `data` are Decimals."""

    position: int
    type: str
    user_id: str | None
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


def is_activity(e: Event) -> bool:
    if e.type == "TicketReplied":
        return e.data.get("by") == "customer"
    return e.type in ACTIVITY_TYPES


def _of_users(events: Iterable[Event]) -> list[Event]:
    """The events about a user that count: those with a user, without the system's own."""
    return [e for e in events if e.user_id is not None and e.type not in SYSTEM_TYPES]


# Time (metrics.md "Time"): UTC calendar days, ISO weeks labelled by their Monday, calendar months.


def utc_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no offset: event times are instants")
    return moment.astimezone(UTC).date()


def period_start(granularity: str, day: date) -> date:
    if granularity == "day":
        return day
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return date.fromisocalendar(year, week, 1)
    if granularity == "month":
        return date(day.year, day.month, 1)
    raise ValueError(granularity)


def period_of(granularity: str, moment: datetime) -> date:
    return period_start(granularity, utc_day(moment))


def next_period(granularity: str, period: date) -> date:
    if granularity == "day":
        return period + timedelta(days=1)
    if granularity == "week":
        return period + timedelta(days=7)
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def periods_touching(granularity: str, first: date, last: date) -> list[date]:
    """Every period that intersects [first, last]."""
    found, period = [], period_start(granularity, first)
    while period <= last:
        found.append(period)
        period = next_period(granularity, period)
    return found


def period_label(granularity: str, period: date) -> str:
    return f"{period.year:04d}-{period.month:02d}" if granularity == "month" else period.isoformat()


def period_end(granularity: str, period: date) -> datetime:
    """The first instant after the period."""
    following = next_period(granularity, period)
    return datetime(following.year, following.month, following.day, tzinfo=UTC)


def watermark_of(events: Iterable[Event]) -> datetime:
    """metrics.md "Time": the greatest event time applied."""
    return max(e.occurred_at for e in events)


# Activity


def _feature_wanted(filter_: str | None) -> Callable[[Event], bool]:
    """Activity events, narrowed to one scene (`scene:social`) or one tool (`tool:check_in`)."""
    if filter_ is None:
        return is_activity
    kind, _, name = filter_.partition(":")
    field_of = {"scene": ("SceneVisited", "scene"), "tool": ("ToolUsed", "tool")}
    type_, key = field_of[kind]
    return lambda e: e.type == type_ and e.data.get(key) == name


def _user_periods(
    events: Iterable[Event], granularity: str, wanted: Callable[[Event], bool]
) -> dict[str, set[date]]:
    """user → the periods in which the user has an event that is `wanted`."""
    found: dict[str, set[date]] = defaultdict(set)
    for e in _of_users(events):
        if wanted(e):
            found[e.user_id].add(period_of(granularity, e.occurred_at))
    return found


def _users_in(periods: Mapping[str, set[date]], period: date) -> int:
    return sum(1 for ps in periods.values() if period in ps)


def active_users(
    events: Sequence[Event], granularity: str, start: date, end: date, filter_: str | None = None
) -> list[dict[str, Any]]:
    """DAU / WAU / MAU: distinct active users per period intersecting [start, end], zeros included."""
    periods = _user_periods(events, granularity, _feature_wanted(filter_))
    return [
        {"period": period_label(granularity, p), "users": _users_in(periods, p)}
        for p in periods_touching(granularity, start, end)
    ]


def stickiness(events: Sequence[Event], start: date, end: date) -> list[dict[str, Any]]:
    """Per month: the mean DAU over its days inside [start, end] (inactive days count 0) over its MAU."""
    days = _user_periods(events, "day", is_activity)
    months = _user_periods(events, "month", is_activity)
    series = []
    for month in periods_touching("month", start, end):
        inside = [
            d
            for d in periods_touching("day", month, next_period("month", month) - timedelta(days=1))
            if start <= d <= end
        ]
        mean_dau = sum(_users_in(days, d) for d in inside) / len(inside)
        mau = _users_in(months, month)
        series.append(
            {
                "period": period_label("month", month),
                "avg_dau": round(mean_dau, 4),
                "mau": mau,
                # metrics.md leaves a month without users open; the API answers 0
                "stickiness": round(mean_dau / mau, 4) if mau else 0.0,
            }
        )
    return series


def frequency(events: Sequence[Event], granularity: str, start: date, end: date) -> list[dict[str, Any]]:
    """Per week or month: how many users were active on exactly 1, 2, ... days of it."""
    days = _user_periods(events, "day", is_activity)
    series = []
    for p in periods_touching(granularity, start, end):
        histogram: dict[int, int] = defaultdict(int)
        for active_days in days.values():
            n = sum(1 for d in active_days if period_start(granularity, d) == p)
            if n:
                histogram[n] += 1
        series.append(
            {
                "period": period_label(granularity, p),
                "days": {str(n): histogram[n] for n in sorted(histogram)},
            }
        )
    return series


def first_seen(events: Iterable[Event]) -> dict[str, datetime]:
    """user → the time of their earliest event of any kind."""
    seen: dict[str, datetime] = {}
    for e in _of_users(events):
        if e.user_id not in seen or e.occurred_at < seen[e.user_id]:
            seen[e.user_id] = e.occurred_at
    return seen


def lifecycle(events: Sequence[Event], granularity: str, start: date, end: date) -> list[dict[str, Any]]:
    """Per week or month: new, returning, resurrecting and dormant (negative) users."""
    active = _user_periods(events, granularity, is_activity)
    firsts = {u: period_of(granularity, t) for u, t in first_seen(events).items()}
    series = []
    for p in periods_touching(granularity, start, end):
        before = period_start(granularity, p - timedelta(days=1))
        counts = {"new": 0, "returning": 0, "resurrecting": 0, "dormant": 0}
        for user, periods in active.items():
            now, then = p in periods, before in periods
            if now and firsts[user] == p:
                counts["new"] += 1
            elif now and then:
                counts["returning"] += 1
            elif now and firsts[user] < p:
                counts["resurrecting"] += 1
            if then and not now:
                counts["dormant"] += 1
        series.append({"period": period_label(granularity, p), **counts, "dormant": -counts["dormant"]})
    return series


# Retention


def _first_touch(events: Iterable[Event], key: str) -> dict[str, str]:
    """user → the context value `key` of their earliest event naming it (then by log position)."""
    found: dict[str, tuple[datetime, int, str]] = {}
    for e in _of_users(events):
        if e.context.get(key):
            candidate = (e.occurred_at, e.position, e.context[key])
            if e.user_id not in found or candidate[:2] < found[e.user_id][:2]:
                found[e.user_id] = candidate
    return {u: v[2] for u, v in found.items()}


def _earliest(events: Iterable[Event], type_: str) -> dict[str, datetime]:
    dates: dict[str, datetime] = {}
    for e in _of_users(events):
        if e.type == type_ and (e.user_id not in dates or e.occurred_at < dates[e.user_id]):
            dates[e.user_id] = e.occurred_at
    return dates


def cohort_dates(events: Sequence[Event], definition: str) -> dict[str, datetime]:
    """user → the time that puts them in a cohort: `first_seen`, `signup` or `first_order`."""
    if definition == "first_seen":
        return first_seen(events)
    return _earliest(events, {"signup": "UserRegistered", "first_order": "OrderPlaced"}[definition])


def _returned(e: Event, returning: str) -> bool:
    return is_activity(e) if returning == "active" else e.type == "OrderPlaced"


def retention(
    events: Sequence[Event],
    granularity: str,
    definition: str,
    returning: str,
    mode: str,
    start: date,
    end: date,
    periods: int,
    watermark: datetime,
    breakdown: str | None = None,
) -> list[dict[str, Any]]:
    """Cohorts of the periods intersecting [start, end] (by breakdown value when asked), each with
    values[0] = size and values[k] = members returning in period C+k (`on`) or in C+k or later
    (`on_or_after`), cells whose period starts after `end` left out."""
    cohorts = {u: period_of(granularity, t) for u, t in cohort_dates(events, definition).items()}
    returns = _user_periods(events, granularity, lambda e: _returned(e, returning))
    groups = _first_touch(events, breakdown) if breakdown else {}
    rows = []
    for c in periods_touching(granularity, start, end):
        by_group: dict[str | None, list[str]] = defaultdict(list)
        for user in (u for u, cohort in cohorts.items() if cohort == c):
            by_group[groups.get(user)].append(user)
        for group in sorted(by_group, key=lambda g: (g is None, g or "")):
            row = _cohort_row(granularity, c, by_group[group], returns, mode, end, periods, watermark)
            rows.append({**row, "breakdown_value": group} if breakdown else row)
    return rows


def _cohort_row(
    granularity: str,
    cohort: date,
    members: list[str],
    returns: Mapping[str, set[date]],
    mode: str,
    end: date,
    periods: int,
    watermark: datetime,
) -> dict[str, Any]:
    values, complete = [len(members)], [period_end(granularity, cohort) <= watermark]
    target = cohort
    for _ in range(periods):
        target = next_period(granularity, target)
        if target > end:
            break
        if mode == "on":
            values.append(sum(1 for u in members if target in returns.get(u, ())))
        else:
            values.append(sum(1 for u in members if any(p >= target for p in returns.get(u, ()))))
        complete.append(period_end(granularity, target) <= watermark)
    return {
        "cohort": period_label(granularity, cohort),
        "size": len(members),
        "values": values,
        "rates": [round(v / len(members), 4) for v in values],
        "complete": complete,
    }


# Orders and value


def repurchase(events: Sequence[Event], start: date, end: date) -> dict[str, Any]:
    """Customers with 2+ orders placed in [start, end] over those with 1+, and the median and p90
    of the days between a customer's consecutive orders placed in it."""
    placed: dict[str, list[datetime]] = defaultdict(list)
    for e in _of_users(events):
        if e.type == "OrderPlaced" and start <= utc_day(e.occurred_at) <= end:
            placed[e.user_id].append(e.occurred_at)
    customers = len(placed)
    repeat = sum(1 for times in placed.values() if len(times) >= 2)
    gaps = sorted(
        (later - earlier).total_seconds() / 86400
        for times in placed.values()
        for earlier, later in itertools.pairwise(sorted(times))
    )
    return {
        "customers": customers,
        "repeat_customers": repeat,
        "repurchase_rate": _share(repeat, customers),
        "median_days_between_orders": _percentile(gaps, 0.5),
        "p90_days_between_orders": _percentile(gaps, 0.9),
    }


def _share(part: int, whole: int) -> float | None:
    """metrics.md "Conventions": 4 places; a share over nobody is null."""
    return round(part / whole, 4) if whole else None


def _percentile(ascending: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks, rounded to 2 places; None without values."""
    if not ascending:
        return None
    rank = (len(ascending) - 1) * q
    below, above = ascending[math.floor(rank)], ascending[math.ceil(rank)]
    return round(below + (above - below) * (rank - math.floor(rank)), 2)


def net_revenue(mine: Iterable[Event]) -> Decimal:
    """OrderPaid amounts minus OrderRefunded amounts, all time (one currency in these histories)."""
    signs = {"OrderPaid": 1, "OrderRefunded": -1}
    return sum((signs[e.type] * Decimal(e.data["amount"]) for e in mine if e.type in signs), Decimal(0))


def money_text(amount: Decimal) -> str:
    """An exact amount as the API shows it: every significant place, at least two."""
    whole, _, places = f"{amount:.4f}".partition(".")
    return f"{whole}.{places.rstrip('0').ljust(2, '0')}"


RFM_SEGMENTS = {
    # (recency score, frequency score) as the two digits of a pattern, as the common map draws it
    "11 12 21 22": "lost",
    "13 14 23 24": "at_risk",
    "15 25": "cant_lose_them",
    "31 32": "about_to_sleep",
    "33": "need_attention",
    "34 35 44 45": "loyal",
    "41": "promising",
    "51": "new",
    "42 43 52 53": "potential_loyalist",
    "54 55": "champions",
}


def _quintile(value: Any, everyone: list[Any]) -> int:
    """1 + ⌊5w/n⌋ for a value better than w of the n values (ties score alike)."""
    worse = sum(1 for v in everyone if v < value)
    return 1 + (5 * worse) // len(everyone)


def rfm(events: Sequence[Event], watermark: datetime) -> dict[str, dict[str, Any]]:
    """user → recency days, frequency, monetary (as the API shows money), the three quintile scores
    and the segment, for every user with an order."""
    last: dict[str, date] = {}
    orders: dict[str, int] = defaultdict(int)
    for e in _of_users(events):
        if e.type == "OrderPlaced":
            orders[e.user_id] += 1
            last[e.user_id] = max(last.get(e.user_id, date.min), utc_day(e.occurred_at))
    revenue = {u: net_revenue(e for e in _of_users(events) if e.user_id == u) for u in orders}
    customers = list(orders)
    recency = {u: (utc_day(watermark) - last[u]).days for u in customers}
    found = {}
    for u in customers:
        r = _quintile(-recency[u], [-recency[c] for c in customers])
        f = _quintile(orders[u], [orders[c] for c in customers])
        found[u] = {
            "recency_days": recency[u],
            "frequency": orders[u],
            "monetary": money_text(revenue[u]),
            "r": r,
            "f": f,
            "m": _quintile(revenue[u], [revenue[c] for c in customers]),
            "segment": next(name for cells, name in RFM_SEGMENTS.items() if f"{r}{f}" in cells.split()),
        }
    return found


# User state


def instant_text(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with `Z`, with the fraction of a second only when there is one."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _resurrection(active_days: list[date]) -> date | None:
    """The latest active day that came more than the churn threshold after the one before it."""
    returns = [
        later for earlier, later in itertools.pairwise(active_days) if (later - earlier).days > CHURN_DAYS
    ]
    return returns[-1] if returns else None


def _latest_context(mine: list[Event], key: str, newest: bool) -> str | None:
    named = sorted((e.occurred_at, e.position, e.context[key]) for e in mine if e.context.get(key))
    if not named:
        return None
    return (named[-1] if newest else named[0])[2]


def user_state(mine: list[Event]) -> dict[str, Any]:
    """One user's row from all their events (metrics.md "User state", before the watermark-relative
    lifecycle and RFM): country and tier are the latest, channel the first touch."""

    def times(*types: str) -> list[datetime]:
        return [e.occurred_at for e in mine if e.type in types]

    def total(type_: str, key: str) -> int:
        return sum(e.data[key] for e in mine if e.type == type_)

    active = [e.occurred_at for e in mine if is_activity(e)]
    tiers = sorted((e.occurred_at, e.position, e.data["tier"]) for e in mine if e.type == "MembershipChanged")
    return {
        "user_id": mine[0].user_id,
        "first_seen_at": instant_text(min(e.occurred_at for e in mine)),
        "signup_at": instant_text(min(times("UserRegistered"), default=None)),
        "first_order_at": instant_text(min(times("OrderPlaced"), default=None)),
        "last_active_at": instant_text(max(active, default=None)),
        "last_order_at": instant_text(max(times("OrderPlaced"), default=None)),
        "orders": len(times("OrderPlaced")),
        "net_revenue": money_text(net_revenue(mine)),
        "points": total("PointsEarned", "points") - total("PointsRedeemed", "points"),
        "open_tickets": len(times("TicketOpened")) - len(times("TicketResolved")),
        "country": _latest_context(mine, "country", newest=True),
        "channel": _latest_context(mine, "channel", newest=False),
        "tier": tiers[-1][2] if tiers else None,
        "resurrected_on": _iso(_resurrection(sorted({utc_day(t) for t in active}))),
        "last_position": max(e.position for e in mine),
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def user_states(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """user → their state row, as the API presents it."""
    by_user: dict[str, list[Event]] = defaultdict(list)
    for e in _of_users(events):
        by_user[e.user_id].append(e)
    return {user_id: user_state(mine) for user_id, mine in by_user.items()}
