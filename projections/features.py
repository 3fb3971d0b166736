"""Scenes and tools, the levers of activity (metrics.md "Scenes and tools").

A feature is a scene (`scene:shopping`) or a tool (`tool:check_in`); a user adopts it at their first
use.
- `rm_feature_users`: per user and feature, the adoption and the latest use. They merge by least
  and greatest, so any arrival order gives the same row.
- `rm_feature_days`: per feature and UTC day, its uses, the adoptions on that day, and how many of
  those adopters used it again on or after day 7 after adopting (at any time). An adoption moved
  earlier by a late event moves its counts to the right day.

Feature retention is kept with the other cohort cells (projections.retention: a feature's adoption
is a cohort, its uses are returns). The report reads the day cells (and the adoptions of the last
days before the watermark, not all mature yet, row by row); the impact reads the users' rows, their
adoptions and their payments."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Date, DateTime, Index, Integer, String, Table, and_, func, select

from projections.activity import users_in_range
from projections.intervals import compare_groups, share
from projections.periods import day_bounds
from projections.records import EventRecord
from projections.schema import aware_utc, greatest, least, metadata, naive_utc
from projections.sql import execute_many, key_chunks, upsert, upsert_rows
from projections.users import users
from projections.value import window_revenue

DAY = timedelta(days=1)
REPEAT_AFTER = 7 * DAY
"""A repeat use is one on or after day 7 after adoption."""
ADOPTION_WINDOW = 7 * DAY
"""Impact: adopters adopted within 7 days of first seen..."""
OUTCOME_DAYS = 30 * DAY
"""...and their outcomes are measured over 30 days from first seen."""
NOTE = "correlation, not causation"

feature_users = Table(
    "rm_feature_users",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("feature", String(80), primary_key=True),
    Column("adopted_at", DateTime(), nullable=False),
    Column("last_used_at", DateTime(), nullable=False),
    Index("ix_rm_feature_users_adoption", "feature", "adopted_at"),
)

feature_days = Table(
    "rm_feature_days",
    metadata,
    Column("feature", String(80), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("uses", Integer, nullable=False),
    Column("adopted", Integer, nullable=False),
    Column("repeated", Integer, nullable=False),
)


@dataclass(frozen=True)
class Use:
    """A user's adoption of a feature and their latest use of it (naive UTC)."""

    adopted_at: datetime
    last_used_at: datetime

    def merged(self, other: Use) -> Use:
        return Use(min(self.adopted_at, other.adopted_at), max(self.last_used_at, other.last_used_at))

    @property
    def repeated(self) -> bool:
        return self.last_used_at >= self.adopted_at + REPEAT_AFTER


UseChanges = dict[tuple[str, str], tuple[Use | None, Use]]
"""(user, feature) → (the use before the batch or None, after it), for the pairs a batch changed."""


def apply_features(
    conn: Connection, events: Iterable[EventRecord], stored: Mapping[str, Mapping[str, Use]]
) -> UseChanges:
    """Record the batch's uses (`stored`: the uses of the batch's users before it, from
    `feature_uses`); returns what changed for each (user, feature)."""
    batch: dict[tuple[str, str], Use] = {}
    uses: Counter[tuple[str, date]] = Counter()
    for e in events:
        if e.feature is None or e.user_id is None:
            continue
        at = naive_utc(e.occurred_at)
        key = (e.user_id, e.feature)
        batch[key] = batch[key].merged(Use(at, at)) if key in batch else Use(at, at)
        uses[(e.feature, at.date())] += 1
    if not batch:
        return {}
    changes: UseChanges = {}
    for (user, feature), use in batch.items():
        old = stored.get(user, {}).get(feature)
        new = use if old is None else old.merged(use)
        if new != old:
            changes[(user, feature)] = (old, new)
    _write_uses(conn, changes)
    _write_days(conn, uses, changes)
    return changes


def feature_uses(conn: Connection, user_ids: Iterable[str]) -> dict[str, dict[str, Use]]:
    """user → feature → their use, for these users' every feature."""
    c = feature_users.c
    found: dict[str, dict[str, Use]] = defaultdict(dict)
    for chunk in key_chunks(user_ids):
        query = select(c.user_id, c.feature, c.adopted_at, c.last_used_at).where(c.user_id.in_(chunk))
        for user, feature, adopted_at, last_used_at in conn.execute(query):
            found[user][feature] = Use(adopted_at, last_used_at)
    return found


def _write_uses(conn: Connection, changes: UseChanges) -> None:
    if not changes:
        return
    statement = upsert(conn, feature_users)
    excluded, c = statement.excluded, feature_users.c
    statement = statement.on_conflict_do_update(
        index_elements=[c.user_id, c.feature],
        set_={
            "adopted_at": least(c.adopted_at, excluded.adopted_at),
            "last_used_at": greatest(c.last_used_at, excluded.last_used_at),
        },
    )
    rows = [
        {"user_id": user, "feature": feature, "adopted_at": new.adopted_at, "last_used_at": new.last_used_at}
        for (user, feature), (_, new) in sorted(changes.items())
    ]
    execute_many(conn, statement, rows)


def _write_days(conn: Connection, uses: Counter[tuple[str, date]], changes: UseChanges) -> None:
    adopted: Counter[tuple[str, date]] = Counter()
    repeated: Counter[tuple[str, date]] = Counter()
    for (_, feature), (old, new) in changes.items():
        for use, sign in ((old, -1), (new, +1)):
            if use is None:
                continue
            adopted[(feature, use.adopted_at.date())] += sign
            repeated[(feature, use.adopted_at.date())] += sign * use.repeated
    cells = sorted(set(uses) | set(adopted) | set(repeated))
    rows = [
        {
            "feature": f,
            "day": d,
            "uses": uses[(f, d)],
            "adopted": adopted[(f, d)],
            "repeated": repeated[(f, d)],
        }
        for f, d in cells
        if uses[(f, d)] or adopted[(f, d)] or repeated[(f, d)]
    ]
    upsert_rows(conn, feature_days, rows, ("uses", "adopted", "repeated"))


def known_features(conn: Connection) -> list[str]:
    """Every feature used at least once, by name."""
    c = feature_days.c
    return list(
        conn.execute(select(c.feature).where(c.uses > 0).group_by(c.feature).order_by(c.feature)).scalars()
    )


def feature_report(
    conn: Connection, start: date, end: date, watermark: datetime | None
) -> list[dict[str, Any]]:
    """Every feature used in [start, end]: adoptions, users, uses, share of the active users and
    repeat use on or after day 7 after adoption; most users first, then by name."""
    c = feature_days.c
    totals = {
        feature: (int(uses), int(adopted))
        for feature, uses, adopted in conn.execute(
            select(c.feature, func.sum(c.uses), func.sum(c.adopted))
            .where(c.day.between(start, end))
            .group_by(c.feature)
        )
        if uses
    }
    if not totals:
        return []
    distinct = users_in_range(start, end, ["active", *totals]).subquery()
    counted = dict(
        conn.execute(select(distinct.c.kind, func.count()).group_by(distinct.c.kind)).tuples().all()
    )
    repeats = _repeats(conn, start, end, watermark)
    rows = [
        {
            "feature": feature,
            "adopted": adopted,
            "users": counted.get(feature, 0),
            "uses": uses,
            "share_of_active": share(counted.get(feature, 0), counted.get("active", 0)),
            "repeat_7d": share(*repeats.get(feature, (0, 0))),
        }
        for feature, (uses, adopted) in totals.items()
    ]
    return sorted(rows, key=lambda row: (-row["users"], row["feature"]))


def _repeats(
    conn: Connection, start: date, end: date, watermark: datetime | None
) -> dict[str, tuple[int, int]]:
    """feature → (repeaters, mature adopters) among the adoptions in [start, end]: the cells for the
    days whose every adoption is 7 days old by the watermark, the rows for the days after them."""
    if watermark is None:
        return {}
    found: Counter[tuple[str, str]] = Counter()
    mature_until = min(end, (watermark - REPEAT_AFTER - DAY).date())
    if start <= mature_until:
        c = feature_days.c
        query = (
            select(c.feature, func.sum(c.repeated), func.sum(c.adopted))
            .where(c.day.between(start, mature_until))
            .group_by(c.feature)
        )
        for feature, repeated, adopted in conn.execute(query):
            found[(feature, "repeated")] += int(repeated)
            found[(feature, "adopted")] += int(adopted)
    first, after = day_bounds(max(start, mature_until + DAY), end)
    u = feature_users.c
    recent = select(u.feature, u.adopted_at, u.last_used_at).where(
        u.adopted_at >= first, u.adopted_at < after
    )
    for feature, adopted_at, last_used_at in conn.execute(recent):
        use = Use(adopted_at, last_used_at)
        if aware_utc(adopted_at) + REPEAT_AFTER <= watermark:
            found[(feature, "repeated")] += use.repeated
            found[(feature, "adopted")] += 1
    features = {feature for feature, _ in found}
    return {f: (found[(f, "repeated")], found[(f, "adopted")]) for f in features}


def feature_impact(
    conn: Connection, feature: str, start: date, end: date, watermark: datetime | None
) -> dict[str, Any]:
    """Users first seen in [start, end] 30 days before the watermark: those who adopted `feature`
    within 7 days of first seen against the rest — retained on or after day 30, ordered and net
    revenue within 30 days — with the differences and their 95 % intervals."""
    outcomes = _outcomes(conn, _first_seen(conn, feature, start, end, watermark))
    figures, difference = compare_groups(outcomes["adopters"], outcomes["others"], SHARES, "net_revenue_d30")
    groups = {g: {"users": len(outcomes[g]), **shown} for g, shown in zip(GROUPS, figures, strict=True)}
    return {"feature": feature, "groups": groups, "difference": difference, "note": NOTE}


GROUPS = ("adopters", "others")
SHARES = ("retained_d30", "ordered_d30")


@dataclass(frozen=True)
class Newcomer:
    first_seen_at: datetime
    first_order_at: datetime | None
    last_active_at: datetime | None
    adopted_at: datetime | None


def _first_seen(
    conn: Connection, feature: str, start: date, end: date, watermark: datetime | None
) -> dict[str, Newcomer]:
    """The users first seen in [start, end] with first seen + 30 days at or before the watermark,
    with what their outcomes are read from."""
    if watermark is None:
        return {}
    u, f = users.c, feature_users.c
    first, after = day_bounds(start, end)
    joined = users.outerjoin(feature_users, and_(f.user_id == u.user_id, f.feature == feature))
    query = (
        select(u.user_id, u.first_seen_at, u.first_order_at, u.last_active_at, f.adopted_at)
        .select_from(joined)
        .where(u.first_seen_at >= first, u.first_seen_at < after)
    )
    found = {}
    for user, *times in conn.execute(query):
        newcomer = Newcomer(*(aware_utc(t) for t in times))  # type: ignore[arg-type]
        if newcomer.first_seen_at + OUTCOME_DAYS <= watermark:
            found[user] = newcomer
    return found


def _outcomes(conn: Connection, newcomers: Mapping[str, Newcomer]) -> dict[str, list[dict[str, Any]]]:
    """Per group, each newcomer's outcomes over the 30 days from first seen."""
    revenue = window_revenue(
        conn, {u: (n.first_seen_at, n.first_seen_at + OUTCOME_DAYS) for u, n in newcomers.items()}
    )
    found: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for user, n in sorted(newcomers.items()):
        until = n.first_seen_at + OUTCOME_DAYS
        adopter = n.adopted_at is not None and n.adopted_at < n.first_seen_at + ADOPTION_WINDOW
        found["adopters" if adopter else "others"].append(
            {
                "retained_d30": n.last_active_at is not None and n.last_active_at >= until,
                "ordered_d30": n.first_order_at is not None and n.first_order_at < until,
                "net_revenue_d30": revenue.get(user, {}),
            }
        )
    return found
