"""Who was active (or ordered, or used a scene or tool) in which day, week and month.

`rm_user_periods` has one row per user, kind and period. Kinds are `active` (any activity event),
`order` (OrderPlaced), `scene:<scene>`, `tool:<tool>` and `event:<name>` (EventTracked). Each week or month row counts the user's
distinct active days in it. `rm_period_counts` counts the users of each period. Day rows are
inserted once (a repeat changes nothing), week and month rows add only the days that were new, and
the counters add only the rows that were new, so every number is independent of arrival order.

The activity answers (metrics.md "Activity") read these tables and the users' first-seen times."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    or_,
    select,
)

from projections.periods import (
    GRANULARITIES,
    Granularity,
    label,
    period_start,
    periods_between,
    shift,
    utc_date,
)
from projections.records import EventRecord
from projections.schema import metadata
from projections.sql import key_chunks, upsert_rows
from projections.users import users

KIND_LENGTH = 210
"""`event:` and a tracked event's name."""

user_periods = Table(
    "rm_user_periods",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("kind", String(KIND_LENGTH), primary_key=True),
    Column("granularity", String(5), primary_key=True),
    Column("period", Date, primary_key=True),
    Column("prev_period", Date, nullable=False),
    Column("next_period", Date, nullable=False),
    Column("days", Integer, nullable=False),
    Index("rm_user_periods_by_period", "kind", "granularity", "period"),
)

period_counts = Table(
    "rm_period_counts",
    metadata,
    Column("kind", String(KIND_LENGTH), primary_key=True),
    Column("granularity", String(5), primary_key=True),
    Column("period", Date, primary_key=True),
    Column("users", Integer, nullable=False),
)

PeriodKey = tuple[str, str, Granularity]
"""(user_id, kind, granularity)"""


def kinds_of(event: EventRecord) -> list[str]:
    """The kinds of period an event makes its user count in."""
    kinds = []
    if event.is_activity:
        kinds.append("active")
        if event.feature is not None:
            kinds.append(event.feature)
        if event.tracked_event is not None:
            kinds.append(event.tracked_event)
    if event.type == "OrderPlaced":
        kinds.append("order")
    return kinds


def apply_periods(conn: Connection, events: Iterable[EventRecord]) -> dict[PeriodKey, list[date]]:
    """Record the events' periods; returns, per (user, kind, granularity), the periods that are new."""
    days = set()
    for e in events:
        if e.user_id is not None:
            kinds = kinds_of(e)
            if kinds:
                day = utc_date(e.occurred_at)
                days.update((e.user_id, kind, day) for kind in kinds)
    if not days:
        return {}
    new: dict[PeriodKey, list[date]] = defaultdict(list)
    for user_id, kind, day in _insert_days(conn, days):
        new[(user_id, kind, "day")].append(day)
    added_days = Counter(
        (user_id, kind, granularity, period_start(granularity, day))
        for (user_id, kind, _), new_days in list(new.items())
        for day in new_days
        for granularity in GRANULARITIES[1:]
    )
    for user_id, kind, granularity, period in _add_days(conn, added_days):
        new[(user_id, kind, granularity)].append(period)
    _count_users(conn, Counter((kind, g, p) for (_, kind, g), periods in new.items() for p in periods))
    return dict(new)


def _row(user_id: str, kind: str, granularity: Granularity, period: date, days: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "kind": kind,
        "granularity": granularity,
        "period": period,
        "prev_period": shift(granularity, period, -1),
        "next_period": shift(granularity, period, 1),
        "days": days,
    }


def _insert_days(conn: Connection, days: set[tuple[str, str, date]]) -> list[tuple[str, str, date]]:
    rows = [_row(u, k, "day", d, 1) for u, k, d in sorted(days)]
    return upsert_rows(conn, user_periods, rows, None, ("user_id", "kind", "period"))  # type: ignore[return-value]


def _add_days(
    conn: Connection, added: Counter[tuple[str, str, Granularity, date]]
) -> list[tuple[str, str, Granularity, date]]:
    """Add new active days to week and month rows; returns the rows that did not exist before."""
    if not added:
        return []
    rows = [_row(u, k, g, p, n) for (u, k, g, p), n in sorted(added.items())]
    written = upsert_rows(
        conn, user_periods, rows, "days", ("user_id", "kind", "granularity", "period", "days")
    )
    return [(u, k, g, p) for u, k, g, p, days in written if days == added[(u, k, g, p)]]


def _count_users(conn: Connection, new_rows: Counter[tuple[str, str, date]]) -> None:
    if not new_rows:
        return
    rows = [
        {"kind": k, "granularity": g, "period": p, "users": n} for (k, g, p), n in sorted(new_rows.items())
    ]
    upsert_rows(conn, period_counts, rows, "users")


def periods_of_users(
    conn: Connection, user_ids: Iterable[str], kinds: Sequence[str] | None = None
) -> dict[PeriodKey, set[date]]:
    """Every recorded period of these users for these kinds (None: of every kind)."""
    c = user_periods.c
    found: dict[PeriodKey, set[date]] = defaultdict(set)
    for chunk in key_chunks(user_ids):
        query = select(c.user_id, c.kind, c.granularity, c.period).where(c.user_id.in_(chunk))
        if kinds is not None:
            query = query.where(c.kind.in_(kinds))
        for r in conn.execute(query):
            found[(r.user_id, r.kind, r.granularity)].add(r.period)
    return found


def active_users(
    conn: Connection, granularity: Granularity, start: date, end: date, kind: str
) -> list[dict[str, Any]]:
    """Distinct active users per period of the range, zeros included."""
    counts = users_per_period(conn, kind, granularity, start, end)
    return [
        {"period": label(granularity, p), "users": counts.get(p, 0)}
        for p in periods_between(granularity, start, end)
    ]


def stickiness(conn: Connection, start: date, end: date) -> list[dict[str, Any]]:
    """Per month: mean DAU over its days inside the range (inactive days count 0) over its MAU."""
    daily = users_per_period(conn, "active", "day", start, end)
    monthly = users_per_period(conn, "active", "month", start, end)
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
            c.period.between(period_start(granularity, start), end),
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


def lifecycle_counts(
    conn: Connection, granularity: Granularity, start: date, end: date
) -> list[dict[str, Any]]:
    """Per period: new, returning, resurrecting and (negative) dormant users."""
    current = user_periods.alias("current")
    previous = user_periods.alias("previous")
    cur, prev, u = current.c, previous.c, users.c
    active = and_(cur.kind == "active", cur.granularity == granularity)
    was_active = and_(prev.kind == "active", prev.granularity == granularity)
    first, last = period_start(granularity, start), end

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


def users_in_range(start: date, end: date, kinds: Sequence[str]) -> Select[tuple[str, str]]:
    """(kind, user) for each user with a period of `kind` on a day of [start, end], distinct, as a
    query: the whole months of the range read from month rows, the days around them from day rows."""
    c = user_periods.c
    first_month = start if start.day == 1 else shift("month", period_start("month", start), 1)
    after_months = period_start("month", end + timedelta(days=1))
    spans = [(c.granularity == "day") & c.period.between(start, end)]
    if first_month < after_months:
        spans = [
            (c.granularity == "month") & (c.period >= first_month) & (c.period < after_months),
            (c.granularity == "day") & (c.period >= start) & (c.period < first_month),
            (c.granularity == "day") & (c.period >= after_months) & (c.period <= end),
        ]
    return select(c.kind, c.user_id).where(c.kind.in_(kinds), or_(*spans)).distinct()


def users_per_period(
    conn: Connection, kind: str, granularity: Granularity, start: date, end: date
) -> dict[date, int]:
    """Distinct users of `kind` in each period touching [start, end] that had any."""
    c = period_counts.c
    query = select(c.period, c.users).where(
        c.kind == kind, c.granularity == granularity, c.period.between(period_start(granularity, start), end)
    )
    return dict(conn.execute(query).all())


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def last_active_times(conn: Connection, user_ids: Iterable[str]) -> dict[str, datetime]:
    """Each user's latest activity event time: they have an activity on or after an instant when it
    is at or after it."""
    found: dict[str, datetime] = {}
    u = users.c
    for chunk in key_chunks(user_ids):
        query = select(u.user_id, u.last_active_at).where(u.user_id.in_(chunk), u.last_active_at.isnot(None))
        found.update({user: at.replace(tzinfo=UTC) for user, at in conn.execute(query)})
    return found
