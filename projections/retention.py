"""Retention cohort cells (metrics.md "Retention"), kept so that a query reads a few rows.

For each cohort definition, return kind and granularity, per cohort period and first-touch channel
and country:
- `rm_cohort_sizes`: the users of the cohort;
- `rm_cohort_returns`: the users with a return event in cohort period + offset (mode `on`);
- `rm_cohort_last`: the users whose latest return period is cohort + offset; `on_or_after` at offset
  k is the sum of this histogram from k up.

A user's contribution to these cells is a function of their cohort dates, first-touch channel and
country, and their return periods. A batch changes the cells by the difference of each touched
user's contribution after and before it: read from the new return periods alone when the user's
cohort attributes stayed the same (the common case), recomputed from all of the user's periods when
a late event moved them (an earlier first event, a first signup or order, a first channel).

`retention` answers from these cells alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Connection, Date, Integer, String, Table, func, select

from projections.activity import PeriodKey, periods_of_users
from projections.periods import (
    GRANULARITIES,
    Granularity,
    end_of,
    label,
    offset,
    period_of,
    period_start,
    shift,
)
from projections.schema import metadata
from projections.sql import upsert_rows

COHORT_DATES = {"first_seen": "first_seen_at", "signup": "signup_at", "first_order": "first_order_at"}
RETURN_KINDS = {"active": "last_active_at", "order": "last_order_at"}
"""Return kind → the user column holding the time of the latest such event."""
MOVING_ATTRIBUTES = (*COHORT_DATES.values(), "channel", "first_country")


def _cells(name: str, offset_column: str | None = None) -> Table:
    """A cell table keyed so that a query's filter (definition, return kind, granularity, cohort
    range) is a prefix of its primary key."""
    returns = [Column("returns", String(8), primary_key=True)] if offset_column else []
    offsets = [Column(offset_column, Integer, primary_key=True, autoincrement=False)] if offset_column else []
    return Table(
        name,
        metadata,
        Column("definition", String(12), primary_key=True),
        *returns,
        Column("granularity", String(5), primary_key=True),
        Column("cohort", Date, primary_key=True),
        *offsets,
        Column("channel", String(64), primary_key=True),
        Column("country", String(2), primary_key=True),
        Column("users", Integer, nullable=False),
    )


cohort_sizes = _cells("rm_cohort_sizes")
cohort_returns = _cells("rm_cohort_returns", "offset")
cohort_last = _cells("rm_cohort_last", "last_offset")

Cell = tuple[Any, ...]


class CellChanges:
    """Signed changes to the three cell tables, summed over a batch."""

    def __init__(self) -> None:
        self.sizes: Counter[Cell] = Counter()
        self.returns: Counter[Cell] = Counter()
        self.last: Counter[Cell] = Counter()

    def add_user(
        self, user: Mapping[str, Any], periods: Mapping[tuple[str, str], set[date]], sign: int
    ) -> None:
        """Add (sign +1) or retract (-1) a user's whole contribution."""
        for definition, granularity, cohort, group in _cohorts(user):
            self.sizes[(definition, granularity, cohort, *group)] += sign
            for kind in RETURN_KINDS:
                returned = periods.get((kind, granularity), set())
                for period in returned:
                    k = offset(granularity, cohort, period)
                    if k >= 1:
                        self.returns[(definition, kind, granularity, cohort, k, *group)] += sign
                latest = max(returned, default=None)
                if latest is not None and latest >= cohort:
                    self.last[
                        (definition, kind, granularity, cohort, offset(granularity, cohort, latest), *group)
                    ] += sign

    def add_returns(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        new_periods: Mapping[tuple[str, str], list[date]],
    ) -> None:
        """A user whose cohort attributes did not change returned in `new_periods`."""
        for definition, granularity, cohort, group in _cohorts(after):
            for kind, latest_column in RETURN_KINDS.items():
                for period in new_periods.get((kind, granularity), ()):
                    k = offset(granularity, cohort, period)
                    if k >= 1:
                        self.returns[(definition, kind, granularity, cohort, k, *group)] += 1
                old_latest = _period(granularity, before[latest_column])
                new_latest = _period(granularity, after[latest_column])
                if old_latest != new_latest:
                    for latest, sign in ((old_latest, -1), (new_latest, +1)):
                        if latest is not None and latest >= cohort:
                            k = offset(granularity, cohort, latest)
                            self.last[(definition, kind, granularity, cohort, k, *group)] += sign

    def write(self, conn: Connection) -> None:
        _add(conn, cohort_sizes, ("definition", "granularity", "cohort", "channel", "country"), self.sizes)
        keys = ("definition", "returns", "granularity", "cohort", "offset", "channel", "country")
        _add(conn, cohort_returns, keys, self.returns)
        keys = ("definition", "returns", "granularity", "cohort", "last_offset", "channel", "country")
        _add(conn, cohort_last, keys, self.last)


def apply_cohorts(
    conn: Connection,
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    new_periods: Mapping[PeriodKey, list[date]],
) -> None:
    """Change the cells by what a batch changed for each touched user (`before` lacks new users)."""
    changes = CellChanges()
    moved = [u for u, row in after.items() if u not in before or _moved(before[u], row)]
    everything = periods_of_users(conn, moved, list(RETURN_KINDS))
    for user_id in moved:
        now = {(k, g): everything.get((user_id, k, g), set()) for k in RETURN_KINDS for g in GRANULARITIES}
        if user_id in before:
            then = {key: periods - set(new_periods.get((user_id, *key), ())) for key, periods in now.items()}
            changes.add_user(before[user_id], then, -1)
        changes.add_user(after[user_id], now, +1)
    for user_id, row in after.items():
        if user_id not in before or user_id in moved:
            continue
        mine = {(k, g): new_periods.get((user_id, k, g), []) for k in RETURN_KINDS for g in GRANULARITIES}
        changes.add_returns(before[user_id], row, mine)
    changes.write(conn)


def _moved(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return any(before[name] != after[name] for name in MOVING_ATTRIBUTES)


def _cohorts(user: Mapping[str, Any]) -> list[tuple[str, str, date, tuple[str, str]]]:
    group = (user["channel"] or "", user["first_country"] or "")
    return [
        (definition, granularity, period_of(granularity, user[column]), group)
        for definition, column in COHORT_DATES.items()
        if user[column] is not None
        for granularity in GRANULARITIES
    ]


def _period(granularity: Any, moment: datetime | None) -> date | None:
    return period_of(granularity, moment) if moment is not None else None


def _add(conn: Connection, table: Table, keys: Sequence[str], changes: Counter[Cell]) -> None:
    rows = [dict(zip(keys, cell, strict=True), users=n) for cell, n in sorted(changes.items()) if n]
    if not rows:
        return
    upsert_rows(conn, table, rows, "users")


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
    first = period_start(granularity, start)
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
