"""Retention cohort cells (metrics.md "Retention"), kept so that a query reads a few rows.

For each cohort definition, return kind and granularity, per cohort period and first-touch channel
and country:
- `rm_cohort_sizes`: the users of the cohort;
- `rm_cohort_returns`: the users with a return event in cohort period + offset (mode `on`);
- `rm_cohort_last`: the users whose latest return period is cohort + offset; `on_or_after` at offset
  k is the sum of this histogram from k up.

Definitions are `first_seen`, `signup`, `first_order` and every feature a user adopted (`tool:check_in`:
the period of adoption); return kinds are `active`, `order` and every feature (a use of it), for the
features the data has. A user's contribution to these cells is a function of their standing (the
instant of each definition they are in, their latest return of each kind, their first-touch
channel and country) and their return periods. A batch changes the cells by the difference of each
touched user's contribution after and before it: for a definition whose instant stayed the same
(the common case), from the new periods and latest returns alone; for one a late event moved (an
earlier first event, a first signup, order or use) recomputed from all of the user's periods, and
for all of them when the first-touch channel or country moved.

`retention` answers from these cells alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Connection, Date, Integer, String, Table, func, select

from projections.activity import PeriodKey, periods_of_users
from projections.features import Use, UseChanges
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
"""Return kind → the user column holding the time of the latest such event. A feature is a cohort
definition (its adoption) and a return kind (its uses) too."""


def _cells(name: str, offset_column: str | None = None) -> Table:
    """A cell table keyed so that a query's filter (definition, return kind, granularity, cohort
    range) is a prefix of its primary key."""
    returns = [Column("returns", String(80), primary_key=True)] if offset_column else []
    offsets = [Column(offset_column, Integer, primary_key=True, autoincrement=False)] if offset_column else []
    return Table(
        name,
        metadata,
        Column("definition", String(80), primary_key=True),
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
Periods = Mapping[tuple[str, Granularity], Collection[date]]
"""(return kind, granularity) → periods."""


@dataclass(frozen=True)
class Standing:
    """What places a user in the cells: the instant of each cohort definition they are in, the
    time of their latest return of each kind, and their first-touch channel and country."""

    cohorts: Mapping[str, datetime]
    latest: Mapping[str, datetime]
    group: tuple[str, str]


def standing(user: Mapping[str, Any], uses: Mapping[str, Use]) -> Standing:
    """A user's standing from their row and their features' uses."""
    cohorts = {d: user[column] for d, column in COHORT_DATES.items() if user[column] is not None}
    latest = {k: user[column] for k, column in RETURN_KINDS.items() if user[column] is not None}
    for feature, use in uses.items():
        cohorts[feature] = use.adopted_at
        latest[feature] = use.last_used_at
    return Standing(cohorts, latest, (user["channel"] or "", user["first_country"] or ""))


class CellChanges:
    """Signed changes to the three cell tables, summed over a batch."""

    def __init__(self) -> None:
        self.sizes: Counter[Cell] = Counter()
        self.returns: Counter[Cell] = Counter()
        self.last: Counter[Cell] = Counter()

    def add_cohort(self, definition: str, user: Standing, periods: Periods, sign: int) -> None:
        """Add (sign +1) or retract (-1) the user's whole contribution to a definition's cells."""
        for granularity in GRANULARITIES:
            cohort = period_of(granularity, user.cohorts[definition])
            self.sizes[(definition, granularity, cohort, *user.group)] += sign
            for kind in user.latest:
                returned = periods.get((kind, granularity), ())
                for period in returned:
                    k = offset(granularity, cohort, period)
                    if k >= 1:
                        self.returns[(definition, kind, granularity, cohort, k, *user.group)] += sign
                latest = max(returned, default=None)
                if latest is not None and latest >= cohort:
                    k = offset(granularity, cohort, latest)
                    self.last[(definition, kind, granularity, cohort, k, *user.group)] += sign

    def add_returns(
        self, definition: str, before: Standing, after: Standing, new_periods: Periods, kinds: Collection[str]
    ) -> None:
        """A user whose place in a definition's cohort did not change returned in `new_periods`
        (of `kinds`, the return kinds with new periods or a new latest return)."""
        for granularity in GRANULARITIES:
            cohort = period_of(granularity, after.cohorts[definition])
            for kind in kinds:
                for period in new_periods.get((kind, granularity), ()):
                    k = offset(granularity, cohort, period)
                    if k >= 1:
                        self.returns[(definition, kind, granularity, cohort, k, *after.group)] += 1
                old_latest = _period(granularity, before.latest.get(kind))
                new_latest = _period(granularity, after.latest.get(kind))
                if old_latest != new_latest:
                    for latest, sign in ((old_latest, -1), (new_latest, +1)):
                        if latest is not None and latest >= cohort:
                            k = offset(granularity, cohort, latest)
                            self.last[(definition, kind, granularity, cohort, k, *after.group)] += sign

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
    uses_before: Mapping[str, Mapping[str, Use]],
    use_changes: UseChanges,
) -> None:
    """Change the cells by what a batch changed for each touched user (`before` lacks new users;
    `uses_before` holds their features' uses before the batch, `use_changes` what it changed)."""
    uses_now = {u: dict(uses_before.get(u, {})) for u in after}
    for (user, feature), (_, new) in use_changes.items():
        uses_now[user][feature] = new
    fresh: dict[str, dict[tuple[str, Granularity], list[date]]] = defaultdict(dict)
    for (user, kind, granularity), periods in new_periods.items():
        fresh[user][(kind, granularity)] = periods

    changes = CellChanges()
    moves: dict[str, tuple[Standing | None, Standing, list[str]]] = {}
    for user, row in after.items():
        now = standing(row, uses_now[user])
        then = standing(before[user], uses_before.get(user, {})) if user in before else None
        moved = _moved_cohorts(then, now)
        if moved:
            moves[user] = (then, now, moved)
        if then is None:
            continue
        kinds = {kind for kind, _ in fresh[user]} | {
            k for k in now.latest if then.latest.get(k) != now.latest[k]
        }
        for definition in now.cohorts:
            if definition not in moved and kinds:
                changes.add_returns(definition, then, now, fresh[user], kinds)
    stored = _periods_by_user(conn, [u for u, (then, _, _) in moves.items() if then is not None])
    for user, (then, now, moved) in moves.items():
        mine = fresh[user]
        periods_now = stored.get(user, {}) if then is not None else {k: set(p) for k, p in mine.items()}
        for definition in moved:
            if then is not None and definition in then.cohorts:
                periods_then = {k: p - set(mine.get(k, ())) for k, p in periods_now.items()}
                changes.add_cohort(definition, then, periods_then, -1)
            if definition in now.cohorts:
                changes.add_cohort(definition, now, periods_now, +1)
    changes.write(conn)


def _periods_by_user(
    conn: Connection, user_ids: list[str]
) -> dict[str, dict[tuple[str, Granularity], set[date]]]:
    """user → (kind, granularity) → every recorded period, for these users."""
    found: dict[str, dict[tuple[str, Granularity], set[date]]] = defaultdict(dict)
    for (user, kind, granularity), periods in periods_of_users(conn, user_ids).items():
        found[user][(kind, granularity)] = periods
    return found


def _moved_cohorts(then: Standing | None, now: Standing) -> list[str]:
    """The definitions whose cohort the user entered, left or changed (all of them when their
    first-touch group changed)."""
    if then is None:
        return list(now.cohorts)
    definitions = sorted({*then.cohorts, *now.cohorts})
    if then.group != now.group:
        return definitions
    return [d for d in definitions if then.cohorts.get(d) != now.cohorts.get(d)]


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
