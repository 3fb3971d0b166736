"""The analytics answers (metrics.md), read from the precomputed read models; none reads the log."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, and_, func, select

from projections.activity import period_counts, user_periods
from projections.cohorts import cohort_last, cohort_returns, cohort_sizes
from projections.orders import orders
from projections.periods import Granularity, end_of, label, periods_between, shift
from projections.users import users


def active_users(
    conn: Connection, granularity: Granularity, start: date, end: date, kind: str
) -> list[dict[str, Any]]:
    """Distinct active users per period of the range, zeros included."""
    counts = _counts(conn, kind, granularity, start, end)
    return [
        {"period": label(granularity, p), "users": counts.get(p, 0)}
        for p in periods_between(granularity, start, end)
    ]


def stickiness(conn: Connection, start: date, end: date) -> list[dict[str, Any]]:
    """Per month: mean DAU over its days inside the range (inactive days count 0) over its MAU."""
    daily = _counts(conn, "active", "day", start, end)
    monthly = _counts(conn, "active", "month", start, end)
    series = []
    for month in periods_between("month", start, end):
        first, last = max(month, start), min(shift("month", month, 1) - timedelta(days=1), end)
        days = list(periods_between("day", first, last))
        average = sum(daily.get(d, 0) for d in days) / len(days)
        mau = monthly.get(month, 0)
        series.append(
            {
                "period": label("month", month),
                "avg_dau": round(average, 4),
                "mau": mau,
                "stickiness": round(average / mau, 4) if mau else 0.0,
            }
        )
    return series


def frequency(conn: Connection, granularity: Granularity, start: date, end: date) -> list[dict[str, Any]]:
    """Per period: how many users were active on exactly 1, 2, ... days of it."""
    c = user_periods.c
    query = (
        select(c.period, c.days, func.count())
        .where(
            c.kind == "active",
            c.granularity == granularity,
            c.period.between(_first(granularity, start), end),
        )
        .group_by(c.period, c.days)
    )
    histograms: dict[date, dict[str, int]] = defaultdict(dict)
    for period, days, users_ in conn.execute(query):
        histograms[period][str(days)] = users_
    return [
        {
            "period": label(granularity, p),
            "days": dict(sorted(histograms.get(p, {}).items(), key=lambda kv: int(kv[0]))),
        }
        for p in periods_between(granularity, start, end)
    ]


def lifecycle(conn: Connection, granularity: Granularity, start: date, end: date) -> list[dict[str, Any]]:
    """Per period: new, returning, resurrecting and (negative) dormant users."""
    current = user_periods.alias("current")
    previous = user_periods.alias("previous")
    cur, prev, u = current.c, previous.c, users.c
    active = and_(cur.kind == "active", cur.granularity == granularity)
    was_active = and_(prev.kind == "active", prev.granularity == granularity)
    first, last = _first(granularity, start), end

    joined = current.join(users, u.user_id == cur.user_id).outerjoin(
        previous, and_(prev.user_id == cur.user_id, was_active, prev.period == cur.prev_period)
    )
    is_new = and_(u.first_seen_at >= cur.period, u.first_seen_at < cur.next_period)
    query = (
        select(
            cur.period,
            func.sum(_flag(is_new)),
            func.sum(_flag(and_(prev.user_id.isnot(None), ~is_new))),
            func.sum(_flag(and_(prev.user_id.is_(None), u.first_seen_at < cur.period))),
        )
        .select_from(joined)
        .where(active, cur.period.between(first, last))
        .group_by(cur.period)
    )
    counts = {row[0]: [int(v or 0) for v in row[1:]] for row in conn.execute(query)}

    gone = previous.outerjoin(
        current, and_(cur.user_id == prev.user_id, active, cur.period == prev.next_period)
    )
    dormant_query = (
        select(prev.next_period, func.count())
        .select_from(gone)
        .where(was_active, prev.next_period.between(first, last), cur.user_id.is_(None))
        .group_by(prev.next_period)
    )
    dormant = dict(conn.execute(dormant_query).all())
    series = []
    for p in periods_between(granularity, start, end):
        new, returning, resurrecting = counts.get(p, [0, 0, 0])
        series.append(
            {
                "period": label(granularity, p),
                "new": new,
                "returning": returning,
                "resurrecting": resurrecting,
                "dormant": -int(dormant.get(p, 0)),
            }
        )
    return series


def retention(
    conn: Connection,
    granularity: Granularity,
    definition: str,
    returns: str,
    mode: str,
    start: date,
    end: date,
    periods: int,
    watermark: datetime | None,
    breakdown: str | None = None,
) -> list[dict[str, Any]]:
    """Cohorts whose period lies in [start, end], each with offsets 0..periods (cells after `end`
    left out); values[0] is the cohort size."""
    first = _first(granularity, start)
    group_column = {"channel": "channel", "country": "country", None: None}[breakdown]
    sizes = _sum_cells(conn, cohort_sizes, definition, None, granularity, first, end, None, group_column)
    if mode == "on":
        table, offset_column = cohort_returns, "offset"
    else:
        table, offset_column = cohort_last, "last_offset"
    cells = _sum_cells(conn, table, definition, returns, granularity, first, end, offset_column, group_column)

    rows = []
    for (cohort, group), size in sorted(sizes.items(), key=lambda kv: (kv[0][0], kv[0][1] == "", kv[0][1])):
        if size <= 0:
            continue
        by_offset = cells.get((cohort, group), {})
        values, complete = [size], [_complete(granularity, cohort, watermark)]
        for k in range(1, periods + 1):
            target = shift(granularity, cohort, k)
            if target > end:
                break
            if mode == "on":
                values.append(by_offset.get(k, 0))
            else:
                values.append(sum(n for j, n in by_offset.items() if j >= k))
            complete.append(_complete(granularity, target, watermark))
        row: dict[str, Any] = {
            "cohort": label(granularity, cohort),
            "size": size,
            "values": values,
            "rates": [round(v / size, 4) for v in values],
            "complete": complete,
        }
        if breakdown:
            row["breakdown_value"] = group or None
        rows.append(row)
    return rows


def repurchase(conn: Connection, start: date, end: date) -> dict[str, Any]:
    """Customers with 2+ orders placed in the range over those with 1+, and the days between a
    customer's consecutive orders in the range."""
    c = orders.c
    in_range = and_(c.placed_at >= _midnight(start), c.placed_at < _midnight(end + timedelta(days=1)))
    previous = func.lag(c.placed_at, type_=DateTime()).over(
        partition_by=c.user_id, order_by=(c.placed_at, c.order_id)
    )
    ordered = select(c.user_id, c.placed_at, previous.label("previous")).where(in_range).subquery()
    per_customer: dict[str, int] = defaultdict(int)
    gaps: list[float] = []
    for user_id, placed_at, before in conn.execute(select(ordered)):
        per_customer[user_id] += 1
        if before is not None:
            gaps.append((placed_at - before).total_seconds() / 86400)
    customers = len(per_customer)
    repeat = sum(1 for n in per_customer.values() if n >= 2)
    gaps.sort()
    return {
        "customers": customers,
        "repeat_customers": repeat,
        "repurchase_rate": round(repeat / customers, 4) if customers else None,
        "median_days_between_orders": percentile(gaps, 0.5),
        "p90_days_between_orders": percentile(gaps, 0.9),
    }


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks; None when there are no values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return round(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low), 2)


def _counts(conn: Connection, kind: str, granularity: Granularity, start: date, end: date) -> dict[date, int]:
    c = period_counts.c
    query = select(c.period, c.users).where(
        c.kind == kind, c.granularity == granularity, c.period.between(_first(granularity, start), end)
    )
    return dict(conn.execute(query).all())


def _sum_cells(
    conn: Connection,
    table: Any,
    definition: str,
    returns: str | None,
    granularity: str,
    first: date,
    last: date,
    offset_column: str | None,
    group_column: str | None,
) -> Any:
    c = table.c
    keys = (
        [c.cohort]
        + ([c[group_column]] if group_column else [])
        + ([c[offset_column]] if offset_column else [])
    )
    conditions = [c.definition == definition, c.granularity == granularity, c.cohort.between(first, last)]
    if returns is not None:
        conditions.append(c.returns == returns)
    query = select(*keys, func.sum(c.users)).where(*conditions).group_by(*keys)
    if offset_column is None:
        return {(r[0], r[1] if group_column else ""): int(r[-1]) for r in conn.execute(query)}
    found: dict[tuple[date, str], dict[int, int]] = defaultdict(dict)
    for r in conn.execute(query):
        found[(r[0], r[1] if group_column else "")][int(r[-2])] = int(r[-1])
    return found


def _complete(granularity: Granularity, period: date, watermark: datetime | None) -> bool:
    return watermark is not None and end_of(granularity, period) <= watermark


def _first(granularity: Granularity, day: date) -> date:
    return next(periods_between(granularity, day, day))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _flag(condition: Any) -> Any:
    from sqlalchemy import case

    return case((condition, 1), else_=0)
