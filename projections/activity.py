"""Who was active (or ordered, or used a scene or tool) in which day, week and month.

`rm_user_periods` has one row per user, kind and period. Kinds are `active` (any activity event),
`order` (OrderPlaced), `scene:<scene>` and `tool:<tool>`. Each week or month row counts the user's
distinct active days in it. `rm_period_counts` counts the users of each period. Day rows are
inserted once (a repeat changes nothing), week and month rows add only the days that were new, and
the counters add only the rows that were new, so every number is independent of arrival order."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Column, Connection, Date, Index, Integer, String, Table

from projections.periods import GRANULARITIES, Granularity, period_start, shift, utc_date
from projections.records import EventRecord
from projections.schema import metadata
from projections.sql import upsert_rows

user_periods = Table(
    "rm_user_periods",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("kind", String(80), primary_key=True),
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
    Column("kind", String(80), primary_key=True),
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
        if event.type == "SceneVisited":
            kinds.append(f"scene:{event.data['scene']}")
        elif event.type == "ToolUsed":
            kinds.append(f"tool:{event.data['tool']}")
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
    conn: Connection, user_ids: Sequence[str], kinds: Sequence[str]
) -> dict[PeriodKey, set[date]]:
    """Every recorded period of these users for these kinds."""
    from sqlalchemy import select

    c = user_periods.c
    found: dict[PeriodKey, set[date]] = defaultdict(set)
    for start in range(0, len(user_ids), 500):
        query = select(c.user_id, c.kind, c.granularity, c.period).where(
            c.user_id.in_(user_ids[start : start + 500]), c.kind.in_(kinds)
        )
        for r in conn.execute(query):
            found[(r.user_id, r.kind, r.granularity)].add(r.period)
    return found
