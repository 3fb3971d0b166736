"""A user's lifecycle state at the watermark (metrics.md "User state"): `new` up to 7 days after
first seen; then `resurrected` when active again within 30 days after more than 90 days without
activity; `active` when last active within 30 days; `at_risk` within 31-90 days; `churned` after.
Thresholds are configuration (`COHORTLINE_LIFECYCLE_DAYS=new,active,churn`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from projections.schema import aware_utc

STATES = ("new", "active", "resurrected", "at_risk", "churned")


@dataclass(frozen=True)
class Thresholds:
    new_days: int = 7
    active_days: int = 30
    churn_days: int = 90


def resurrection_day(days: Iterable[date], churn_days: int) -> date | None:
    """The latest active day that came more than `churn_days` after the one before it."""
    found, previous = None, None
    for day in sorted(days):
        if previous is not None and (day - previous).days > churn_days:
            found = day
        previous = day
    return found


def state(
    first_seen_at: datetime,
    last_active_at: datetime | None,
    resurrected_on: date | None,
    watermark: datetime,
    thresholds: Thresholds,
) -> str:
    watermark = aware_utc(watermark)  # type: ignore[assignment]
    if watermark - aware_utc(first_seen_at) <= timedelta(days=thresholds.new_days):  # type: ignore[operator]
        return "new"
    idle = watermark - aware_utc(last_active_at or first_seen_at)  # type: ignore[operator]
    if idle <= timedelta(days=thresholds.active_days):
        if resurrected_on is not None and watermark.date() - resurrected_on <= timedelta(
            days=thresholds.active_days
        ):
            return "resurrected"
        return "active"
    return "at_risk" if idle <= timedelta(days=thresholds.churn_days) else "churned"
