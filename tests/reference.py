"""The metric definitions of metrics.md computed directly over a whole history of events: what every
incremental read model must equal.

Written from the contract alone (metrics.md, events.md) and sharing nothing with the code it checks:
it imports only the standard library (tests/unit/test_reference_imports.py keeps it so), buckets
time itself, knows the activity types from events.md, reads its own `Event`, and presents answers in
the shapes the API gives, so that they compare equal."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
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


FEATURE_SOURCES = {"scene": ("SceneVisited", "scene"), "tool": ("ToolUsed", "tool")}
"""metrics.md "Scenes and tools": a feature's kind → the event type using it and the field naming it."""


TRACKED_SOURCE = {"event": ("EventTracked", "name")}
"""events.md "Custom events": `filter=event:<name>` narrows activity to the events tracked by that name."""


def _feature_wanted(filter_: str | None) -> Callable[[Event], bool]:
    """Activity events, narrowed to one scene (`scene:social`), one tool (`tool:check_in`) or one
    tracked event (`event:Video Played`): the uses of that feature, the events of that name."""
    if filter_ is None:
        return is_activity
    kind, _, name = filter_.partition(":")
    type_, key = {**FEATURE_SOURCES, **TRACKED_SOURCE}[kind]
    return lambda e: e.type == type_ and e.data.get(key) == name


def feature_of(e: Event) -> str | None:
    """The feature an event is a use of (`scene:shopping`, `tool:check_in`); None for other events."""
    for kind, (type_, key) in FEATURE_SOURCES.items():
        if e.type == type_:
            return f"{kind}:{e.data[key]}"
    return None


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
    return _earliest_where(events, lambda e: e.type == type_)


def _earliest_where(events: Iterable[Event], wanted: Callable[[Event], bool]) -> dict[str, datetime]:
    """user → the time of their earliest event that is `wanted`."""
    dates: dict[str, datetime] = {}
    for e in _of_users(events):
        if wanted(e) and (e.user_id not in dates or e.occurred_at < dates[e.user_id]):
            dates[e.user_id] = e.occurred_at
    return dates


def adoptions(events: Iterable[Event], feature: str) -> dict[str, datetime]:
    """user → their adoption of `feature` (`tool:check_in`): the time of their first use of it."""
    return _earliest_where(events, _feature_wanted(feature))


def cohort_dates(events: Sequence[Event], definition: str) -> dict[str, datetime]:
    """user → the time that puts them in a cohort: `first_seen`, `signup`, `first_order`, or a
    feature (`tool:check_in`, `scene:shopping`): its adoption."""
    if definition == "first_seen":
        return first_seen(events)
    if definition in ("signup", "first_order"):
        return _earliest(events, {"signup": "UserRegistered", "first_order": "OrderPlaced"}[definition])
    return adoptions(events, definition)


def _returned(e: Event, returning: str) -> bool:
    """A return event: `active` (any activity), `order` (OrderPlaced) or a feature (a use of it)."""
    if returning == "active":
        return is_activity(e)
    if returning == "order":
        return e.type == "OrderPlaced"
    return _feature_wanted(returning)(e)


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


def reporting_currency(events: Iterable[Event]) -> str | None:
    """The currency RFM ranks monetary in when none is configured: the currency of most orders
    (`OrderPlaced`), the first code among those tied; None without orders."""
    counts = Counter(order_currencies(_of_users(events)).values())
    return min(counts, key=lambda c: (-counts[c], c)) if counts else None


def rfm(
    events: Sequence[Event], watermark: datetime, currency: str | None = None
) -> dict[str, dict[str, Any]]:
    """user → recency days, frequency, monetary (net revenue in the reporting currency, 0 without
    any: `currency`, else the currency of most orders; never converted) as the API shows money, that
    currency, the three quintile scores and the segment, for every user with an order."""
    currency = currency or reporting_currency(events)
    if currency is None:
        return {}  # no order, so no customer
    currency_of = order_currencies(_of_users(events))
    mine = _by_user(events)
    last: dict[str, date] = {}
    orders: dict[str, int] = defaultdict(int)
    for e in _of_users(events):
        if e.type == "OrderPlaced":
            orders[e.user_id] += 1
            last[e.user_id] = max(last.get(e.user_id, date.min), utc_day(e.occurred_at))
    revenue = {
        u: net_revenue_by_currency(mine[u], currencies=currency_of).get(currency, Decimal(0)) for u in orders
    }
    customers = list(orders)
    recency = {u: (utc_day(watermark) - last[u]).days for u in customers}
    found = {}
    for u in customers:
        r = _quintile(-recency[u], [-recency[c] for c in customers])
        f = _quintile(orders[u], [orders[c] for c in customers])
        found[u] = {
            "recency_days": recency[u],
            "frequency": orders[u],
            "monetary": money2(revenue[u]),
            "currency": currency,
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
    lifecycle and RFM): country and tier are the latest, channel the first touch; net revenue per
    currency of the order, rounded half-even to 2 places, a currency without payments or refunds left
    out."""

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
        "net_revenue": {c: money2(a) for c, a in sorted(net_revenue_by_currency(mine).items())},
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


# Money, shares and intervals (metrics.md "Conventions for the sections below")

DAY = timedelta(days=1)
Z95 = Decimal("1.959964")
"""metrics.md "Conventions": the 95 % interval is d ± 1.959964 · se."""

MONEY_SIGNS = {"OrderPaid": 1, "OrderRefunded": -1}
"""metrics.md "Net revenue": paid amounts count up, refunded amounts down; nothing else moves money."""


def money2(amount: Decimal | Fraction) -> str:
    """An exact amount rounded half-even to 2 places, as a decimal string (never `-0.00`)."""
    cents = round(Fraction(amount) * 100)  # Fraction rounds half to even
    return f"{Decimal(cents).scaleb(-2):.2f}"


def _mean_money(total: Decimal | Fraction, count: int) -> str | None:
    """A per-member amount: the exact quotient rounded once; None over nobody."""
    return money2(Fraction(total) / count) if count else None


def _round4(exact: Fraction | Decimal) -> float:
    """A share difference or bound: the exact value rounded half-even to 4 places, as a number."""
    return float(round(Fraction(exact), 4))


def _range(start: date, end: date) -> tuple[datetime, datetime]:
    """metrics.md "Ranges": [from 00:00, to 24:00) UTC."""
    return _midnight(start), _midnight(end + DAY)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _in(moment: datetime, first: datetime | None, after: datetime | None) -> bool:
    """`first <= moment < after`, an open end being unbounded."""
    return (first is None or first <= moment) and (after is None or moment < after)


def _by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    found: dict[str, list[Event]] = defaultdict(list)
    for e in _of_users(events):
        found[e.user_id].append(e)
    return found


def order_currencies(events: Iterable[Event]) -> dict[str, str]:
    """order_id → the currency of its `OrderPlaced`, which its payments and refunds take."""
    return {e.data["order_id"]: e.data["currency"] for e in events if e.type == "OrderPlaced"}


def net_revenue_by_currency(
    mine: Iterable[Event],
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    currencies: Mapping[str, str] | None = None,
) -> dict[str, Decimal]:
    """metrics.md "Net revenue": OrderPaid minus OrderRefunded amounts with event time in
    [window_start, window_end), per currency of the order (looked up in `currencies`, else among `mine`
    at any time). A currency is listed when it has a paid or refunded event in the window, even one
    netting to 0."""
    mine = list(mine)
    currency_of = order_currencies(mine) if currencies is None else currencies
    found: dict[str, Decimal] = defaultdict(Decimal)
    for e in mine:
        if e.type in MONEY_SIGNS and _in(e.occurred_at, window_start, window_end):
            found[currency_of[e.data["order_id"]]] += MONEY_SIGNS[e.type] * Decimal(e.data["amount"])
    return dict(found)


def _per_member(
    amounts: Sequence[Mapping[str, Decimal]], currencies: Iterable[str]
) -> dict[str, list[Fraction]]:
    """currency → every member's amount in it (0 for a member without it)."""
    return {c: [Fraction(a.get(c, 0)) for a in amounts] for c in currencies}


def _means_text(amounts: Sequence[Mapping[str, Decimal]], currencies: Iterable[str]) -> dict[str, str]:
    """currency → the mean per member as money; `{}` over nobody."""
    if not amounts:
        return {}
    return {c: money2(sum(xs) / len(xs)) for c, xs in _per_member(amounts, currencies).items()}


def _interval(
    difference: Fraction, variance: Fraction, smallest: int, present: Callable[[Any], Any]
) -> dict[str, Any]:
    """`{"value", "ci95"}`: the exact difference ± 1.959964 · sqrt(variance), rounded only when
    presented; no interval when a group has fewer than 2 members."""
    if smallest < 2:
        return {"value": present(difference), "ci95": None}
    with localcontext() as ctx:
        ctx.prec = 60
        se = (Decimal(variance.numerator) / Decimal(variance.denominator)).sqrt()
        centre = Decimal(difference.numerator) / Decimal(difference.denominator)
        bounds = [centre - Z95 * se, centre + Z95 * se]
    return {"value": present(difference), "ci95": [present(b) for b in bounds]}


def share_difference(treated: Sequence[bool], control: Sequence[bool]) -> dict[str, Any]:
    """treated - control share with its Wald (unpooled) interval; value and interval null when a
    group is empty (a share over nobody is null)."""
    if not treated or not control:
        return {"value": None, "ci95": None}
    p1, p0 = Fraction(sum(treated), len(treated)), Fraction(sum(control), len(control))
    variance = p1 * (1 - p1) / len(treated) + p0 * (1 - p0) / len(control)
    return _interval(p1 - p0, variance, min(len(treated), len(control)), _round4)


def _sample_variance(xs: Sequence[Fraction]) -> Fraction:
    mean = sum(xs, Fraction(0)) / len(xs)
    return sum(((x - mean) ** 2 for x in xs), Fraction(0)) / (len(xs) - 1)


def mean_difference(treated: Sequence[Fraction], control: Sequence[Fraction]) -> dict[str, Any]:
    """treated - control mean with its Welch interval, as money; value and interval null when a group
    is empty (a mean over nobody is null)."""
    if not treated or not control:
        return {"value": None, "ci95": None}
    difference = sum(treated, Fraction(0)) / len(treated) - sum(control, Fraction(0)) / len(control)
    smallest = min(len(treated), len(control))
    variance = (
        _sample_variance(treated) / len(treated) + _sample_variance(control) / len(control)
        if smallest >= 2
        else Fraction(0)
    )
    return _interval(difference, variance, smallest, money2)


def _money_difference(
    treated: Sequence[Mapping[str, Decimal]], control: Sequence[Mapping[str, Decimal]]
) -> dict[str, dict[str, Any]]:
    """currency → treated - control mean per member, for every currency seen in either group."""
    currencies = sorted({c for a in (*treated, *control) for c in a})
    t, c = _per_member(treated, currencies), _per_member(control, currencies)
    return {cur: mean_difference(t[cur], c[cur]) for cur in currencies}


# Revenue and LTV (metrics.md "Orders and value")


def revenue(events: Sequence[Event], granularity: str, start: date, end: date) -> dict[str, Any]:
    """Per period intersecting [start, end] and currency of the order: paid, refunded, net, the number
    of OrderPaid events and ARPU = net / the period's active users (is_activity; null when none).
    A currency without a paid or refunded event in the period is left out; a cancelled order's
    payment counts (metrics.md counts OrderPaid and OrderRefunded only)."""
    currency_of = order_currencies(events)
    active = _user_periods(events, granularity, is_activity)
    cells: dict[tuple[date, str], dict[str, Any]] = defaultdict(
        lambda: {"paid": Decimal(0), "refunded": Decimal(0), "orders_paid": 0}
    )
    for e in _of_users(events):
        if e.type in MONEY_SIGNS:
            cell = cells[period_of(granularity, e.occurred_at), currency_of[e.data["order_id"]]]
            if e.type == "OrderPaid":
                cell["paid"] += Decimal(e.data["amount"])
                cell["orders_paid"] += 1
            else:
                cell["refunded"] += Decimal(e.data["amount"])
    series = []
    for p in periods_touching(granularity, start, end):
        users = _users_in(active, p)
        currencies = {}
        for (period, currency), cell in sorted(cells.items()):
            if period == p:
                net = cell["paid"] - cell["refunded"]
                currencies[currency] = {
                    "paid": money2(cell["paid"]),
                    "refunded": money2(cell["refunded"]),
                    "net": money2(net),
                    "orders_paid": cell["orders_paid"],
                    "arpu": _mean_money(net, users),
                }
        series.append(
            {"period": period_label(granularity, p), "currencies": currencies, "active_users": users}
        )
    return {"series": series}


def ltv(
    events: Sequence[Event],
    granularity: str,
    definition: str,
    start: date,
    end: date,
    periods: int | None,
    watermark: datetime,
) -> dict[str, Any]:
    """Cohorts (as in `retention`, only those with members) of the periods intersecting [start, end]:
    at offset k, the members' net revenue with event time in periods C .. C+k (whole periods, so
    revenue before the cohort instant but inside period C counts) over the cohort size, per currency.
    Cells whose period starts after `end` are left out (`periods=None`: up to `end`); a currency is
    listed when a member has a paid or refunded event in one of the cells, with "0.00" before it."""
    cohorts = {u: period_of(granularity, t) for u, t in cohort_dates(events, definition).items()}
    currency_of = order_currencies(events)
    money = [
        (e.user_id, period_of(granularity, e.occurred_at), currency_of[e.data["order_id"]], e)
        for e in _of_users(events)
        if e.type in MONEY_SIGNS
    ]
    rows = []
    for c in periods_touching(granularity, start, end):
        members = {u for u, cohort in cohorts.items() if cohort == c}
        if not members:
            continue
        offsets = [c]
        while periods is None or len(offsets) <= periods:
            following = next_period(granularity, offsets[-1])
            if following > end:
                break
            offsets.append(following)
        spent = [(p, cur, e) for u, p, cur, e in money if u in members and c <= p <= offsets[-1]]
        currencies = {}
        for currency in sorted({cur for _, cur, _ in spent}):
            cumulative = []
            for offset in offsets:
                total = sum(
                    (
                        MONEY_SIGNS[e.type] * Decimal(e.data["amount"])
                        for p, cur, e in spent
                        if cur == currency and p <= offset
                    ),
                    Decimal(0),
                )
                cumulative.append(money2(Fraction(total) / len(members)))
            currencies[currency] = cumulative
        rows.append(
            {
                "cohort": period_label(granularity, c),
                "size": len(members),
                "currencies": currencies,
                "complete": [period_end(granularity, o) <= watermark for o in offsets],
            }
        )
    return {"cohorts": rows}


# Scenes and tools (metrics.md "Scenes and tools")


def _feature_uses(events: Iterable[Event]) -> dict[str, dict[str, list[datetime]]]:
    """feature → user → the times of their uses of it."""
    found: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for e in _of_users(events):
        feature = feature_of(e)
        if feature is not None:
            found[feature][e.user_id].append(e.occurred_at)
    return found


def features(events: Sequence[Event], start: date, end: date, watermark: datetime) -> list[dict[str, Any]]:
    """Every feature used in [start, end], most users first, then by name: users adopting it in the
    range, users and uses in the range, users over the range's active users, and repeat_7d among the
    range's adopters with adoption + 7 days <= watermark: the share with a use on or after day 7 after
    adoption (at any time: the history ends at the watermark)."""
    first, after = _range(start, end)
    active = {e.user_id for e in _of_users(events) if is_activity(e) and _in(e.occurred_at, first, after)}
    rows = []
    for feature, by_user in _feature_uses(events).items():
        inside = {u: [t for t in times if _in(t, first, after)] for u, times in by_user.items()}
        users = [u for u, times in inside.items() if times]
        if not users:
            continue
        adopted = {u: min(times) for u, times in by_user.items() if _in(min(times), first, after)}
        mature = [u for u, t in adopted.items() if t + 7 * DAY <= watermark]
        repeated = [u for u in mature if any(t >= adopted[u] + 7 * DAY for t in by_user[u])]
        rows.append(
            {
                "feature": feature,
                "adopted": len(adopted),
                "users": len(users),
                "uses": sum(len(times) for times in inside.values()),
                "share_of_active": _share(len(users), len(active)),
                "repeat_7d": _share(len(repeated), len(mature)),
            }
        )
    rows.sort(key=lambda r: (-r["users"], r["feature"]))
    return rows


def feature_impact(
    events: Sequence[Event], feature: str, start: date, end: date, watermark: datetime
) -> dict[str, Any]:
    """Users first seen in [start, end] with first seen + 30 days <= watermark, split into those who
    adopted `feature` within 7 days of first seen and the others: their outcomes after first seen, the
    difference (adopters - others) with 95 % intervals, as `campaign_effect` gives its uplift. Any
    feature name answers; one nobody used has no adopters."""
    first, after = _range(start, end)
    by_user = _by_user(events)
    currency_of = order_currencies(events)
    adopted = adoptions(events, feature)
    outcomes: dict[str, list[dict[str, Any]]] = {"adopters": [], "others": []}
    for user, seen in first_seen(events).items():
        if not _in(seen, first, after) or seen + 30 * DAY > watermark:
            continue
        mine = by_user[user]
        adopter = user in adopted and _in(adopted[user], seen, seen + 7 * DAY)
        outcomes["adopters" if adopter else "others"].append(
            {
                "retained_d30": any(is_activity(e) and e.occurred_at >= seen + 30 * DAY for e in mine),
                "ordered_d30": any(
                    e.type == "OrderPlaced" and _in(e.occurred_at, seen, seen + 30 * DAY) for e in mine
                ),
                "net_revenue_d30": net_revenue_by_currency(mine, seen, seen + 30 * DAY, currency_of),
            }
        )
    shares = ("retained_d30", "ordered_d30")
    money = {g: [o["net_revenue_d30"] for o in os] for g, os in outcomes.items()}
    currencies = sorted({c for amounts in money.values() for a in amounts for c in a})
    groups = {
        g: {
            "users": len(os),
            **{s: _share(sum(o[s] for o in os), len(os)) for s in shares},
            "net_revenue_d30": _means_text(money[g], currencies),
        }
        for g, os in outcomes.items()
    }
    adopters, others = outcomes["adopters"], outcomes["others"]
    difference = {s: share_difference([o[s] for o in adopters], [o[s] for o in others]) for s in shares}
    difference["net_revenue_d30"] = _money_difference(money["adopters"], money["others"])
    return {
        "feature": feature,
        "groups": groups,
        "difference": difference,
        "note": "correlation, not causation",
    }


# Campaigns (metrics.md "Campaigns")


def _instant(value: datetime | str | None) -> datetime | None:
    """A declared timestamp as the event holds it (parsed, or as the sender wrote it)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _enrolments(events: Iterable[Event]) -> dict[str, dict[str, tuple[datetime, str]]]:
    """campaign → member → (enrolment time, group). events.md allows one enrolment per user and
    campaign; were there more, the earliest (by event time, then position) would count."""
    found: dict[str, dict[str, tuple[datetime, int, str]]] = defaultdict(dict)
    for e in _of_users(events):
        if e.type == "CampaignEnrolled":
            candidate = (e.occurred_at, e.position, e.data["group"])
            members = found[e.data["campaign_id"]]
            if e.user_id not in members or candidate[:2] < members[e.user_id][:2]:
                members[e.user_id] = candidate
    return {c: {u: (at, group) for u, (at, _, group) in ms.items()} for c, ms in found.items()}


def campaigns(events: Sequence[Event]) -> dict[str, Any]:
    """Every campaign created, ordered by its declared `starts_at` then id: name, kind, `starts_at`
    and `ends_at` as declared (shown as RFC 3339 UTC instants), `ended` (a CampaignEnded is in the
    history, whatever its event time) and its members per group."""
    ended = {e.data["campaign_id"] for e in events if e.type == "CampaignEnded"}
    enrolled = _enrolments(events)
    created: dict[str, Event] = {}
    for e in sorted(events, key=lambda e: e.position):
        if e.type == "CampaignCreated":
            created.setdefault(e.data["campaign_id"], e)
    listed = []
    for campaign_id, e in created.items():
        groups = [group for _, group in enrolled.get(campaign_id, {}).values()]
        listed.append(
            {
                "campaign_id": campaign_id,
                "name": e.data["name"],
                "kind": e.data["kind"],
                "starts_at": instant_text(_instant(e.data["starts_at"])),
                "ends_at": instant_text(_instant(e.data.get("ends_at"))),
                "ended": campaign_id in ended,
                "members": {"treatment": groups.count("treatment"), "control": groups.count("control")},
            }
        )
    listed.sort(key=lambda c: (_instant(created[c["campaign_id"]].data["starts_at"]), c["campaign_id"]))
    return {"campaigns": listed}


def campaign_effect(events: Sequence[Event], campaign_id: str, watermark: datetime) -> dict[str, Any] | None:
    """The groups' outcomes after each member's enrolment time e, their uplift (treatment - control)
    with 95 % intervals, and completeness; None for an unknown campaign. Readings: coupons redeemed
    count at any time, by a member of the group, of a coupon whose CouponIssued named this campaign;
    coupons_redeemed is a count, so it has no uplift; complete_* over no members is true."""
    listed = {c["campaign_id"]: c for c in campaigns(events)["campaigns"]}
    if campaign_id not in listed:
        return None
    by_user = _by_user(events)
    currency_of = order_currencies(events)
    coupon_campaign = {
        e.data["coupon_id"]: e.data.get("campaign_id") for e in events if e.type == "CouponIssued"
    }
    outcomes: dict[str, list[dict[str, Any]]] = {"treatment": [], "control": []}
    enrolled = _enrolments(events).get(campaign_id, {})
    for user, (at, group) in enrolled.items():
        mine = by_user.get(user, [])
        placed = [e.occurred_at for e in mine if e.type == "OrderPlaced"]
        active = [e.occurred_at for e in mine if is_activity(e)]
        outcomes[group].append(
            {
                "ordered_7d": any(at <= t < at + 7 * DAY for t in placed),
                "ordered_30d": any(at <= t < at + 30 * DAY for t in placed),
                "active_after_7d": any(t >= at + 7 * DAY for t in active),
                "active_after_30d": any(t >= at + 30 * DAY for t in active),
                "coupons_redeemed": sum(
                    1
                    for e in mine
                    if e.type == "CouponRedeemed" and coupon_campaign.get(e.data["coupon_id"]) == campaign_id
                ),
                "net_revenue_30d": net_revenue_by_currency(mine, at, at + 30 * DAY, currency_of),
            }
        )
    shares = ("ordered_7d", "ordered_30d", "active_after_7d", "active_after_30d")
    money = {g: [o["net_revenue_30d"] for o in os] for g, os in outcomes.items()}
    currencies = sorted({c for amounts in money.values() for a in amounts for c in a})
    groups = {
        g: {
            "members": len(os),
            **{s: _share(sum(o[s] for o in os), len(os)) for s in shares},
            "coupons_redeemed": sum(o["coupons_redeemed"] for o in os),
            "net_revenue_30d": _means_text(money[g], currencies),
        }
        for g, os in outcomes.items()
    }
    treated, control = outcomes["treatment"], outcomes["control"]
    uplift = {s: share_difference([o[s] for o in treated], [o[s] for o in control]) for s in shares}
    uplift["net_revenue_30d"] = _money_difference(money["treatment"], money["control"])
    return {
        "campaign": listed[campaign_id],
        "groups": groups,
        "uplift": uplift,
        "complete_7d": all(at + 7 * DAY <= watermark for at, _ in enrolled.values()),
        "complete_30d": all(at + 30 * DAY <= watermark for at, _ in enrolled.values()),
    }


# Customer service (metrics.md "Customer service")


def _tickets(events: Iterable[Event]) -> dict[str, dict[str, datetime | None]]:
    """ticket → its opening, first agent reply and first resolution (earliest of each)."""
    found: dict[str, dict[str, datetime | None]] = defaultdict(
        lambda: {"opened": None, "first_response": None, "resolved": None}
    )
    moments = {"TicketOpened": "opened", "TicketResolved": "resolved"}
    for e in _of_users(events):
        key = moments.get(e.type)
        if e.type == "TicketReplied" and e.data.get("by") == "agent":
            key = "first_response"
        if key:
            ticket = found[e.data["ticket_id"]]
            if ticket[key] is None or e.occurred_at < ticket[key]:
                ticket[key] = e.occurred_at
    return found


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


SCORE_BUCKETS = {"1-2": (1, 2), "3": (3,), "4-5": (4, 5)}


def satisfaction(
    events: Sequence[Event], granularity: str, start: date, end: date, watermark: datetime
) -> dict[str, Any]:
    """Per period intersecting [start, end] (whole periods): tickets opened and resolved, resolution
    and first-response percentiles in hours, ratings, their mean score and csat (null over no ratings);
    then retention by score over the ratings in [start, end], every bucket listed (retained_30d null
    when none is mature)."""
    tickets = [t for t in _tickets(events).values() if t["opened"] is not None]
    ratings = [e for e in _of_users(events) if e.type == "SatisfactionRated"]
    series = []
    for p in periods_touching(granularity, start, end):

        def inside(moment: datetime | None, p: date = p) -> bool:
            return moment is not None and period_of(granularity, moment) == p

        resolution = sorted(_hours(t["resolved"], t["opened"]) for t in tickets if inside(t["resolved"]))
        response = sorted(
            _hours(t["first_response"], t["opened"]) for t in tickets if inside(t["first_response"])
        )
        scores = [e.data["score"] for e in ratings if inside(e.occurred_at)]
        series.append(
            {
                "period": period_label(granularity, p),
                "opened": sum(1 for t in tickets if inside(t["opened"])),
                "resolved": len(resolution),
                "median_resolution_hours": _percentile(resolution, 0.5),
                "p90_resolution_hours": _percentile(resolution, 0.9),
                "median_first_response_hours": _percentile(response, 0.5),
                "ratings": len(scores),
                "avg_score": round(sum(scores) / len(scores), 4) if scores else None,
                "csat": _share(sum(1 for s in scores if s >= 4), len(scores)),
            }
        )
    first, after = _range(start, end)
    activity = {u: [e.occurred_at for e in mine if is_activity(e)] for u, mine in _by_user(events).items()}
    by_score = []
    for bucket, scores in SCORE_BUCKETS.items():
        rated = [e for e in ratings if e.data["score"] in scores and _in(e.occurred_at, first, after)]
        mature = [e for e in rated if e.occurred_at + 30 * DAY <= watermark]
        retained = [e for e in mature if any(t >= e.occurred_at + 30 * DAY for t in activity[e.user_id])]
        by_score.append(
            {
                "bucket": bucket,
                "ratings": len(rated),
                "mature": len(mature),
                "retained_30d": _share(len(retained), len(mature)),
            }
        )
    return {"series": series, "retention_by_score": by_score}


# Overview (metrics.md "Overview")


def overview(events: Sequence[Event], start: date, end: date, watermark: datetime) -> dict[str, Any]:
    """The four dimensions over [start, end], and `previous`: the same over the n days before `start`,
    as if queried itself at the same watermark (so its own retained_users looks n days further back;
    before any event its figures are 0, null and {})."""
    days = (end - start).days + 1
    before = _overview_figures(events, start - days * DAY, start - DAY, watermark)
    return {**_overview_figures(events, start, end, watermark), "previous": before}


def _overview_figures(events: Sequence[Event], start: date, end: date, watermark: datetime) -> dict[str, Any]:
    """Readings: a user's signup is their earliest UserRegistered; arpu is {} with no active users;
    ltv_90d averages over every eligible user, listing the currencies any of them has."""
    first, after = _range(start, end)
    earlier = first - (after - first)
    by_user = _by_user(events)
    currency_of = order_currencies(events)

    def active_in(mine: list[Event], lo: datetime, hi: datetime | None) -> bool:
        return any(is_activity(e) and _in(e.occurred_at, lo, hi) for e in mine)

    def placed_in(mine: list[Event], lo: datetime, hi: datetime) -> bool:
        return any(e.type == "OrderPlaced" and _in(e.occurred_at, lo, hi) for e in mine)

    active = {u for u, mine in by_user.items() if active_in(mine, first, after)}
    seen = {u: t for u, t in first_seen(events).items() if _in(t, first, after)}
    signups = {u: t for u, t in _earliest(events, "UserRegistered").items() if _in(t, first, after)}
    activating = [u for u, t in signups.items() if t + 30 * DAY <= watermark]
    retaining = [u for u, t in seen.items() if t + 30 * DAY <= watermark]
    scores = [
        e.data["score"]
        for e in _of_users(events)
        if e.type == "SatisfactionRated" and _in(e.occurred_at, first, after)
    ]
    net: dict[str, Decimal] = defaultdict(Decimal)
    for mine in by_user.values():
        for currency, amount in net_revenue_by_currency(mine, first, after, currency_of).items():
            net[currency] += amount
    valued = [
        net_revenue_by_currency(by_user[u], t, t + 90 * DAY, currency_of)
        for u, t in seen.items()
        if t + 90 * DAY <= watermark
    ]
    return {
        "scale": {
            "active_users": len(active),
            "new_users": len(seen),
            "retained_users": sum(1 for u in active if active_in(by_user[u], earlier, first)),
            "orders": sum(
                1 for e in _of_users(events) if e.type == "OrderPlaced" and _in(e.occurred_at, first, after)
            ),
        },
        "efficiency": {
            "activation_rate": _share(
                sum(1 for u in activating if placed_in(by_user[u], signups[u], signups[u] + 30 * DAY)),
                len(activating),
            ),
            "repurchase_rate": repurchase(events, start, end)["repurchase_rate"],
        },
        "quality": {
            "retention_d30": _share(
                sum(1 for u in retaining if active_in(by_user[u], seen[u] + 30 * DAY, None)), len(retaining)
            ),
            "csat": _share(sum(1 for s in scores if s >= 4), len(scores)),
        },
        "value": {
            "net_revenue": {c: money2(a) for c, a in sorted(net.items())},
            "arpu": {c: money2(Fraction(a) / len(active)) for c, a in sorted(net.items())} if active else {},
            "ltv_90d": _means_text(valued, sorted({c for a in valued for c in a})),
        },
    }
