"""The retention and activity projection: user state, activity periods, orders and cohort cells,
applied together in one transaction (the cohort cells need each user's row before and after)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table

from projections.activity import apply_periods, period_counts, user_periods
from projections.cohorts import apply_cohorts, cohort_last, cohort_returns, cohort_sizes
from projections.orders import apply_orders, orders
from projections.records import EventRecord
from projections.users import fold, upsert_deltas, user_rows, users


class AnalyticsProjection:
    name = "analytics"
    tables: tuple[Table, ...] = (
        users,
        user_periods,
        period_counts,
        orders,
        cohort_sizes,
        cohort_returns,
        cohort_last,
    )

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> set[str]:
        """Apply a batch of new events; returns the ids of the users whose state changed."""
        deltas = fold(events)
        if not deltas:
            return set()
        ids = sorted(deltas)
        before = {row["user_id"]: row for row in user_rows(conn, ids)}
        upsert_deltas(conn, list(deltas.values()))
        after = {row["user_id"]: row for row in user_rows(conn, ids)}
        new_periods = apply_periods(conn, events)
        apply_orders(conn, events)
        apply_cohorts(conn, before, after, new_periods)
        return set(ids)
