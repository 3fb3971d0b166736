"""The metric definitions of metrics.md computed directly over a whole history of events, written
independently of the projections: what every incremental read model must equal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from projections.periods import Granularity, end_of, label, period_of, periods_between, shift
from projections.records import EventRecord


def _periods_of(events: Iterable[EventRecord], granularity: Granularity, wanted: Any) -> dict[str, set[date]]:
    """user → periods in which the user has an event accepted by `wanted`."""
    found: dict[str, set[date]] = defaultdict(set)
    for e in events:
        if e.user_id is not None and wanted(e):
            found[e.user_id].add(period_of(granularity, e.occurred_at))
    return found


def _activity(filter_: str | None = None) -> Any:
    def wanted(e: EventRecord) -> bool:
        if not e.is_activity:
            return False
        if filter_ is None:
            return True
        kind, _, value = filter_.partition(":")
        return (kind == "scene" and e.type == "SceneVisited" and e.data.get("scene") == value) or (
            kind == "tool" and e.type == "ToolUsed" and e.data.get("tool") == value
        )

    return wanted


def _placed(e: EventRecord) -> bool:
    return e.type == "OrderPlaced"


def active_users(
    events: list[EventRecord], granularity: Granularity, start: date, end: date, filter_: str | None = None
) -> list[dict[str, Any]]:
    periods = _periods_of(events, granularity, _activity(filter_))
    return [
        {"period": label(granularity, p), "users": sum(1 for ps in periods.values() if p in ps)}
        for p in periods_between(granularity, start, end)
    ]


def stickiness(events: list[EventRecord], start: date, end: date) -> list[dict[str, Any]]:
    days = _periods_of(events, "day", _activity())
    months = _periods_of(events, "month", _activity())
    series = []
    for month in periods_between("month", start, end):
        in_range = [
            d
            for d in periods_between(
                "day", max(month, start), min(shift("month", month, 1) - timedelta(1), end)
            )
        ]
        total = sum(sum(1 for ds in days.values() if d in ds) for d in in_range)
        mau = sum(1 for ms in months.values() if month in ms)
        avg = total / len(in_range)
        series.append(
            {
                "period": label("month", month),
                "avg_dau": round(avg, 4),
                "mau": mau,
                "stickiness": round(avg / mau, 4) if mau else 0.0,
            }
        )
    return series


def frequency(
    events: list[EventRecord], granularity: Granularity, start: date, end: date
) -> list[dict[str, Any]]:
    days = _periods_of(events, "day", _activity())
    series = []
    for p in periods_between(granularity, start, end):
        histogram: dict[str, int] = defaultdict(int)
        for ds in days.values():
            n = sum(1 for d in ds if period_of(granularity, datetime(d.year, d.month, d.day)) == p)
            if n:
                histogram[str(n)] += 1
        series.append(
            {
                "period": label(granularity, p),
                "days": dict(sorted(histogram.items(), key=lambda kv: int(kv[0]))),
            }
        )
    return series


def first_seen(events: list[EventRecord]) -> dict[str, datetime]:
    seen: dict[str, datetime] = {}
    for e in events:
        if e.user_id is not None and (e.user_id not in seen or e.occurred_at < seen[e.user_id]):
            seen[e.user_id] = e.occurred_at
    return seen


def lifecycle(
    events: list[EventRecord], granularity: Granularity, start: date, end: date
) -> list[dict[str, Any]]:
    active = _periods_of(events, granularity, _activity())
    firsts = {u: period_of(granularity, t) for u, t in first_seen(events).items()}
    series = []
    for p in periods_between(granularity, start, end):
        before = shift(granularity, p, -1)
        new = returning = resurrecting = dormant = 0
        for user, ps in active.items():
            now, then = p in ps, before in ps
            if now and firsts[user] == p:
                new += 1
            elif now and then:
                returning += 1
            elif now and firsts[user] < p:
                resurrecting += 1
            if then and not now:
                dormant += 1
        series.append(
            {
                "period": label(granularity, p),
                "new": new,
                "returning": returning,
                "resurrecting": resurrecting,
                "dormant": -dormant,
            }
        )
    return series


def _first_touch(events: list[EventRecord], key: str) -> dict[str, str]:
    found: dict[str, tuple[datetime, int, str]] = {}
    for e in events:
        if e.user_id is not None and key in e.context:
            candidate = (e.occurred_at, e.position, e.context[key])
            if e.user_id not in found or candidate < found[e.user_id]:
                found[e.user_id] = candidate
    return {u: v[2] for u, v in found.items()}


def cohort_dates(events: list[EventRecord], definition: str) -> dict[str, datetime]:
    if definition == "first_seen":
        return first_seen(events)
    wanted = "UserRegistered" if definition == "signup" else "OrderPlaced"
    dates: dict[str, datetime] = {}
    for e in events:
        if (
            e.type == wanted
            and e.user_id is not None
            and (e.user_id not in dates or e.occurred_at < dates[e.user_id])
        ):
            dates[e.user_id] = e.occurred_at
    return dates


def retention(
    events: list[EventRecord],
    granularity: Granularity,
    definition: str,
    returning: str,
    mode: str,
    start: date,
    end: date,
    periods: int,
    watermark: datetime,
    breakdown: str | None = None,
) -> list[dict[str, Any]]:
    cohorts = {u: period_of(granularity, t) for u, t in cohort_dates(events, definition).items()}
    returns = _periods_of(events, granularity, _activity() if returning == "active" else _placed)
    groups = _first_touch(events, breakdown) if breakdown else {}
    rows = []
    for c in periods_between(granularity, start, end):
        members_all = [u for u, cohort in cohorts.items() if cohort == c]
        values_by_group: dict[str | None, list[str]] = defaultdict(list)
        for u in members_all:
            values_by_group[groups.get(u) if breakdown else None].append(u)
        for group, members in sorted(values_by_group.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            values, complete = [len(members)], [end_of(granularity, c) <= watermark]
            for k in range(1, periods + 1):
                target = shift(granularity, c, k)
                if target > end:
                    break
                if mode == "on":
                    values.append(sum(1 for u in members if target in returns.get(u, ())))
                else:
                    values.append(sum(1 for u in members if any(p >= target for p in returns.get(u, ()))))
                complete.append(end_of(granularity, target) <= watermark)
            row = {
                "cohort": label(granularity, c),
                "size": len(members),
                "values": values,
                "rates": [round(v / len(members), 4) for v in values],
                "complete": complete,
            }
            if breakdown:
                row["breakdown_value"] = group
            rows.append(row)
    return rows


def repurchase(events: list[EventRecord], start: date, end: date) -> dict[str, Any]:
    placed: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        if e.type == "OrderPlaced" and e.user_id is not None and start <= e.occurred_at.date() <= end:
            placed[e.user_id].append(e.occurred_at)
    customers = len(placed)
    repeat = sum(1 for times in placed.values() if len(times) >= 2)
    gaps = sorted(
        (later - earlier).total_seconds() / 86400
        for times in placed.values()
        for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
    )
    return {
        "customers": customers,
        "repeat_customers": repeat,
        "repurchase_rate": round(repeat / customers, 4) if customers else 0.0,
        "median_days_between_orders": _percentile(gaps, 0.5),
        "p90_days_between_orders": _percentile(gaps, 0.9),
    }


def _percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    rank = (len(values) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return round(values[low] + (values[high] - values[low]) * (rank - low), 2)


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


def rfm(events: list[EventRecord], watermark: datetime) -> dict[str, dict[str, Any]]:
    """user → recency days, frequency, monetary (in 1/10,000 units), the three quintile scores and
    the segment, for every user with an order."""
    last: dict[str, date] = {}
    orders: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    for e in events:
        if e.user_id is None:
            continue
        if e.type == "OrderPlaced":
            orders[e.user_id] += 1
            last[e.user_id] = max(last.get(e.user_id, e.occurred_at.date()), e.occurred_at.date())
        elif e.type in ("OrderPaid", "OrderRefunded"):
            sign = 1 if e.type == "OrderPaid" else -1
            revenue[e.user_id] += sign * int(e.data["amount"] * 10_000)
    customers = list(orders)

    def quintile(value: Any, values: list[Any]) -> int:
        worse = sum(1 for v in values if v < value)
        return 1 + (5 * worse) // len(values)

    recency = {u: (watermark.date() - last[u]).days for u in customers}
    negated = [-recency[u] for u in customers]
    counts = [orders[u] for u in customers]
    money = [revenue[u] for u in customers]
    found = {}
    for u in customers:
        r, f = quintile(-recency[u], negated), quintile(orders[u], counts)
        pattern = f"{r}{f}"
        found[u] = {
            "recency_days": recency[u],
            "frequency": orders[u],
            "monetary": revenue[u],
            "r": r,
            "f": f,
            "m": quintile(revenue[u], money),
            "segment": next(name for cells, name in RFM_SEGMENTS.items() if pattern in cells.split()),
        }
    return found
