"""The four dimensions over a date range, 规模 / 效率 / 质量 / 价值 (metrics.md "Overview"), and the
same for the period just before, read from the users, activity, orders, payments and ratings read
models."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, func, intersect, select

from projections.activity import last_active_times, user_periods
from projections.intervals import currencies_of, money_means, share
from projections.money import money, units
from projections.orders import order_times, orders, repurchase
from projections.periods import day_bounds
from projections.schema import aware_utc
from projections.service import csat
from projections.users import users
from projections.value import range_revenue, window_revenue

DAY = timedelta(days=1)


def overview(conn: Connection, start: date, end: date, watermark: datetime | None) -> dict[str, Any]:
    """The four dimensions over [start, end], and `previous`: the same over the n days before."""
    days = (end - start).days + 1
    previous = figures(conn, start - days * DAY, start - DAY, watermark)
    return {**figures(conn, start, end, watermark), "previous": previous}


def figures(conn: Connection, start: date, end: date, watermark: datetime | None) -> dict[str, Any]:
    """Scale, efficiency, quality and value over [start, end], as if that range had been asked."""
    days = (end - start).days + 1
    active = _active_users(start, end)
    retained = intersect(active, _active_users(start - days * DAY, start - DAY)).subquery()
    active_users = conn.execute(select(func.count()).select_from(active.subquery())).scalar_one()
    seen = _users_by(conn, "first_seen_at", start, end)
    signups = _users_by(conn, "signup_at", start, end)
    net = range_revenue(conn, start, end)
    return {
        "scale": {
            "active_users": active_users,
            "new_users": len(seen),
            "retained_users": conn.execute(select(func.count()).select_from(retained)).scalar_one(),
            "orders": _orders_placed(conn, start, end),
        },
        "efficiency": {
            "activation_rate": _activation_rate(conn, signups, watermark),
            "repurchase_rate": repurchase(conn, start, end)["repurchase_rate"],
        },
        "quality": {
            "retention_d30": _retention_d30(conn, seen, watermark),
            "csat": csat(conn, start, end),
        },
        "value": {
            "net_revenue": {c: money(units(amount)) for c, amount in sorted(net.items())},
            "arpu": {c: money(units(amount) / active_users) for c, amount in sorted(net.items())}
            if active_users
            else {},
            "ltv_90d": _ltv_90d(conn, seen, watermark),
        },
    }


def _active_users(start: date, end: date) -> Select[tuple[str]]:
    """The users with an activity event on a day of [start, end], as a query."""
    p = user_periods.c
    return (
        select(p.user_id)
        .where(p.kind == "active", p.granularity == "day", p.period.between(start, end))
        .distinct()
    )


def _users_by(conn: Connection, column: str, start: date, end: date) -> dict[str, datetime]:
    """user → the instant of `column` (first seen, signup), for those whose instant is in the range."""
    first, after = day_bounds(start, end)
    instant = users.c[column]
    query = select(users.c.user_id, instant).where(instant >= first, instant < after)
    return {user: aware_utc(at) for user, at in conn.execute(query)}


def _orders_placed(conn: Connection, start: date, end: date) -> int:
    first, after = day_bounds(start, end)
    o = orders.c
    return conn.execute(select(func.count()).where(o.placed_at >= first, o.placed_at < after)).scalar_one()


def _matured(instants: dict[str, datetime], days: int, watermark: datetime | None) -> dict[str, datetime]:
    """The users whose instant + `days` days is at or before the watermark."""
    if watermark is None:
        return {}
    return {user: at for user, at in instants.items() if at + days * DAY <= watermark}


def _activation_rate(
    conn: Connection, signups: dict[str, datetime], watermark: datetime | None
) -> float | None:
    """Among signups 30 days old, the share with an order within 30 days of signup."""
    eligible = _matured(signups, 30, watermark)
    ordered = sum(
        1
        for user, times in order_times(conn, eligible).items()
        if any(eligible[user] <= t < eligible[user] + 30 * DAY for t in times)
    )
    return share(ordered, len(eligible))


def _retention_d30(conn: Connection, seen: dict[str, datetime], watermark: datetime | None) -> float | None:
    """Among users first seen 30 days before the watermark, the share active on or after day 30."""
    eligible = _matured(seen, 30, watermark)
    last_active = last_active_times(conn, eligible)
    retained = sum(
        1 for user, at in eligible.items() if user in last_active and last_active[user] >= at + 30 * DAY
    )
    return share(retained, len(eligible))


def _ltv_90d(conn: Connection, seen: dict[str, datetime], watermark: datetime | None) -> dict[str, str]:
    """Among users first seen 90 days before the watermark, the mean net revenue within 90 days of
    first seen, per currency any of them has."""
    eligible = _matured(seen, 90, watermark)
    revenue = window_revenue(conn, {user: (at, at + 90 * DAY) for user, at in eligible.items()})
    amounts = [revenue.get(user, {}) for user in sorted(eligible)]
    return money_means(amounts, currencies_of(*amounts))
