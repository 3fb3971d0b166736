"""A user's lifecycle state at the watermark (metrics.md "User state"): `new` up to 7 days after
first seen; then `resurrected` when active again within 30 days after more than 90 days without
activity; `active` when last active within 30 days; `at_risk` within 31-90 days; `churned` after.
Thresholds are configuration (`COHORTLINE_LIFECYCLE_DAYS=new,active,churn`).

Each state is one rule over stored columns (projections.rules): the same rule is evaluated for a
user's own state and compiled into the SQL and Elasticsearch searches. Like every rule, it
compares times at millisecond resolution."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType

from projections.rules import Compare, Missing, Not, Op, Rule, all_of, any_of, holds
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


@lru_cache(maxsize=64)
def lifecycle_rules(watermark: datetime, thresholds: Thresholds) -> Mapping[str, Rule]:
    """The rule of every state at the watermark; exactly one holds for each user."""
    watermark = aware_utc(watermark)  # type: ignore[assignment]
    new_since = watermark - timedelta(days=thresholds.new_days)
    active_since = watermark - timedelta(days=thresholds.active_days)
    churned_before = watermark - timedelta(days=thresholds.churn_days)
    settled = Compare("first_seen_at", "<", new_since)
    back = Compare("resurrected_on", ">=", watermark.date() - timedelta(days=thresholds.active_days))
    rules = {
        "new": Compare("first_seen_at", ">=", new_since),
        "active": all_of(settled, _idle_since(">=", active_since), Not(back)),
        "resurrected": all_of(settled, _idle_since(">=", active_since), back),
        "at_risk": all_of(settled, _idle_since("<", active_since), _idle_since(">=", churned_before)),
        "churned": all_of(settled, _idle_since("<", churned_before)),
    }
    return MappingProxyType(rules)


def lifecycle_rule(name: str, watermark: datetime, thresholds: Thresholds) -> Rule:
    return lifecycle_rules(watermark, thresholds)[name]


def _idle_since(op: Op, bound: datetime) -> Rule:
    """The user's last activity, or first event for a user never active, compared with `bound`."""
    return any_of(
        Compare("last_active_at", op, bound),
        all_of(Missing("last_active_at"), Compare("first_seen_at", op, bound)),
    )


def state(
    first_seen_at: datetime,
    last_active_at: datetime | None,
    resurrected_on: date | None,
    watermark: datetime,
    thresholds: Thresholds,
) -> str:
    user = {
        "first_seen_at": first_seen_at,
        "last_active_at": last_active_at,
        "resurrected_on": resurrected_on,
    }
    rules = lifecycle_rules(watermark, thresholds)
    return next(name for name in STATES if holds(rules[name], user))
