"""The analytics projection: user state, activity periods, orders, cohort cells, money, campaigns
and service, applied together in one transaction (the cohort cells need each user's row before and
after)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Table, bindparam

from domain.catalogue import SYSTEM_TYPES
from projections.activity import PeriodKey, apply_periods, period_counts, periods_of_users, user_periods
from projections.campaigns import apply_campaigns, campaign_members, campaigns, coupon_redemptions, coupons
from projections.features import apply_features, feature_days, feature_users, feature_uses
from projections.lifecycle import Thresholds, resurrection_day
from projections.orders import apply_orders, orders
from projections.records import EventRecord
from projections.retention import apply_cohorts, cohort_last, cohort_returns, cohort_sizes
from projections.search import attach_net_revenue
from projections.service import apply_service, ratings, tickets
from projections.users import fold, upsert_deltas, user_rows, users
from projections.value import apply_value, payments, pending_payments, revenue_cells, user_revenue


class AnalyticsProjection:
    name = "analytics"

    def __init__(self, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or Thresholds()

    tables: tuple[Table, ...] = (
        users,
        user_periods,
        period_counts,
        orders,
        cohort_sizes,
        cohort_returns,
        cohort_last,
        revenue_cells,
        user_revenue,
        pending_payments,
        payments,
        campaigns,
        campaign_members,
        coupons,
        coupon_redemptions,
        tickets,
        ratings,
        feature_users,
        feature_days,
    )

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> dict[str, dict[str, Any]]:
        """Apply a batch of new events; returns the rows of the users it changed, as they are now.
        Events Cohortline records itself (an erasure) change no number."""
        events = [e for e in events if e.type not in SYSTEM_TYPES]
        apply_campaigns(conn, events)
        apply_service(conn, events)
        deltas = fold(events)
        if not deltas:
            return {}
        before = {row["user_id"]: row for row in user_rows(conn, deltas)}
        uses_before = feature_uses(conn, deltas)
        after = upsert_deltas(conn, list(deltas.values()))
        new_periods = apply_periods(conn, events)
        use_changes = apply_features(conn, events, uses_before)
        apply_orders(conn, events)
        apply_value(conn, events)
        apply_cohorts(conn, before, after, new_periods, uses_before, use_changes)
        for user_id, day in self._resurrections(conn, before, new_periods).items():
            after[user_id]["resurrected_on"] = day
        attach_net_revenue(conn, after.values())
        return after

    def _resurrections(
        self,
        conn: Connection,
        before: Mapping[str, Mapping[str, Any]],
        new_periods: Mapping[PeriodKey, list[date]],
    ) -> dict[str, date | None]:
        """Keep each user's latest return after a churn-long gap: from the new days alone when they
        come after the user's last active day, from all their days when one came out of order.
        Returns the users whose return day was written, with it."""
        churn = self.thresholds.churn_days
        found: dict[str, date | None] = {}
        recompute = []
        for (user_id, kind, granularity), days in new_periods.items():
            if kind != "active" or granularity != "day":
                continue
            last_at = before[user_id]["last_active_at"] if user_id in before else None
            last = last_at.date() if last_at is not None else None
            if last is not None and min(days) < last:
                recompute.append(user_id)
                continue
            day = resurrection_day([*([last] if last else []), *days], churn)
            if day is not None:
                found[user_id] = day
        if recompute:
            every = periods_of_users(conn, recompute, ["active"])
            for user_id in recompute:
                found[user_id] = resurrection_day(every.get((user_id, "active", "day"), ()), churn)
        if found:
            c = users.c
            conn.execute(
                users.update().where(c.user_id == bindparam("key")).values(resurrected_on=bindparam("day")),
                [{"key": user_id, "day": day} for user_id, day in sorted(found.items())],
            )
        return found
