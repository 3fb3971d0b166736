"""Retention and activity analytics (api.md "Analytics", metrics.md): each route's typed query and
result, declared once (api.declared)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, Field, model_validator

from api.common import Day, Freshness, Stamped
from api.declared import QueryError, declare
from api.freshness import stamped, wait_for_position
from domain.catalogue import SCENES
from projections import reports
from projections.periods import Granularity, periods_between

blueprint = Blueprint("analytics", __name__)

MAX_PERIODS = {"day": 731, "week": 260, "month": 120}
FILTER = f"^(scene:({'|'.join(SCENES)})|tool:.{{1,64}})$"


class DateRange(Freshness):
    start: Day = Field(alias="from", description="first day of the range (inclusive)")
    end: Day = Field(alias="to", description="last day of the range (inclusive)")

    period_limit: ClassVar[bool] = True
    rules: ClassVar[Mapping[str, str]] = {
        "to": "must not be before from; the range holds at most "
        + ", ".join(f"{n} {g} periods" for g, n in MAX_PERIODS.items())
    }

    @property
    def period_length(self) -> Granularity:
        return getattr(self, "granularity", "day")

    @model_validator(mode="after")
    def _ordered_and_bounded(self) -> DateRange:
        if self.end < self.start:
            raise QueryError("to", "must not be before from")
        limit = MAX_PERIODS[self.period_length]
        if self.period_limit and self.periods_in_range() > limit:
            raise QueryError("to", f"at most {limit} {self.period_length} periods per query")
        return self

    def periods_in_range(self) -> int:
        return sum(1 for _ in periods_between(self.period_length, self.start, self.end))


class RetentionQuery(DateRange):
    rules: ClassVar[Mapping[str, str]] = {
        **DateRange.rules,
        "periods": "at most " + ", ".join(f"{n} for {g}" for g, n in MAX_PERIODS.items()),
    }

    granularity: Literal["day", "week", "month"] = Field("month", description="period length")
    cohort: Literal["first_seen", "signup", "first_order"] = Field(
        "first_seen", description="cohort definition"
    )
    returns: Literal["active", "order"] = Field(
        "active", alias="return", description="what counts as a return"
    )
    mode: Literal["on", "on_or_after"] = Field("on", description="N-period or unbounded retention")
    periods: int | None = Field(
        None,
        ge=0,
        le=max(MAX_PERIODS.values()),
        description="offsets 0..periods (default: to the range's end)",
    )
    breakdown: Literal["channel", "country"] | None = Field(
        None, description="split cohorts by first-touch channel or country"
    )

    @model_validator(mode="after")
    def _periods_bounded(self) -> RetentionQuery:
        if self.periods is not None and self.periods > MAX_PERIODS[self.granularity]:
            raise QueryError("periods", f"must be an integer from 0 to {MAX_PERIODS[self.granularity]}")
        return self

    def offsets(self) -> int:
        return self.periods if self.periods is not None else self.periods_in_range() - 1


class ActiveUsersQuery(DateRange):
    granularity: Literal["day", "week", "month"] = Field("day", description="period length")
    filter: str | None = Field(None, pattern=FILTER, description="scene:<scene> or tool:<tool name>")


class WeeklyOrMonthlyQuery(DateRange):
    granularity: Literal["week", "month"] = Field("week", description="period length")


class RepurchaseQuery(DateRange):
    period_limit: ClassVar[bool] = False
    rules: ClassVar[Mapping[str, str]] = {"to": "must not be before from"}


class CohortRow(BaseModel):
    cohort: str = Field(description="the cohort's period label")
    size: int
    values: list[int] = Field(description="users retained at offsets 0..; values[0] is the size")
    rates: list[float]
    complete: list[bool] = Field(description="whether each offset's period has ended by the watermark")
    breakdown_value: str | None = None


class RetentionResult(Stamped):
    granularity: str
    cohort: str
    returns: str = Field(alias="return")
    mode: str
    breakdown: str | None = None
    cohorts: list[CohortRow]


class UsersInPeriod(BaseModel):
    period: str
    users: int


class ActiveUsersResult(Stamped):
    granularity: str
    filter: str | None = None
    series: list[UsersInPeriod]


class Stickiness(BaseModel):
    period: str
    avg_dau: float
    mau: int
    stickiness: float


class StickinessResult(Stamped):
    series: list[Stickiness]


class ActiveDays(BaseModel):
    period: str
    days: dict[str, int] = Field(description="number of active days → users")


class FrequencyResult(Stamped):
    granularity: str
    series: list[ActiveDays]


class LifecycleCounts(BaseModel):
    period: str
    new: int
    returning: int
    resurrecting: int
    dormant: int = Field(description="users active in the period before and not in this one, negative")


class LifecycleResult(Stamped):
    granularity: str
    series: list[LifecycleCounts]


class RepurchaseResult(Stamped):
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    customers: int
    repeat_customers: int
    repurchase_rate: float | None = Field(description="repeat customers over customers; null over nobody")
    median_days_between_orders: float | None
    p90_days_between_orders: float | None


@declare(
    blueprint,
    "GET",
    "/v1/retention/cohorts",
    summary="Retention cohorts",
    role="reader",
    query=RetentionQuery,
    result=RetentionResult,
    waits=True,
)
def retention(q: RetentionQuery) -> RetentionResult:
    current = wait_for_position(q.min_position, q.wait_ms)
    cohorts = _read(
        lambda conn: reports.retention(
            conn, q.granularity, q.cohort, q.returns, q.mode, q.start, q.end, q.offsets(), current.watermark,
            q.breakdown,
        )
    )  # fmt: skip
    body = {"granularity": q.granularity, "cohort": q.cohort, "return": q.returns, "mode": q.mode}
    if q.breakdown:
        body["breakdown"] = q.breakdown
    return RetentionResult.model_validate(stamped({**body, "cohorts": cohorts}, current))


@declare(
    blueprint,
    "GET",
    "/v1/activity/active-users",
    summary="Distinct active users per period",
    role="reader",
    query=ActiveUsersQuery,
    result=ActiveUsersResult,
    waits=True,
)
def active_users(q: ActiveUsersQuery) -> ActiveUsersResult:
    kind = q.filter or "active"
    current = wait_for_position(q.min_position, q.wait_ms)
    series = _read(lambda conn: reports.active_users(conn, q.granularity, q.start, q.end, kind))
    body: dict[str, Any] = {"granularity": q.granularity, "series": series}
    if q.filter:
        body["filter"] = q.filter
    return ActiveUsersResult.model_validate(stamped(body, current))


@declare(
    blueprint,
    "GET",
    "/v1/activity/stickiness",
    summary="Mean DAU over MAU per month",
    role="reader",
    query=DateRange,
    result=StickinessResult,
    waits=True,
)
def stickiness(q: DateRange) -> StickinessResult:
    current = wait_for_position(q.min_position, q.wait_ms)
    series = _read(lambda conn: reports.stickiness(conn, q.start, q.end))
    return StickinessResult.model_validate(stamped({"series": series}, current))


@declare(
    blueprint,
    "GET",
    "/v1/activity/frequency",
    summary="Users by number of active days per period",
    role="reader",
    query=WeeklyOrMonthlyQuery,
    result=FrequencyResult,
    waits=True,
)
def frequency(q: WeeklyOrMonthlyQuery) -> FrequencyResult:
    current = wait_for_position(q.min_position, q.wait_ms)
    series = _read(lambda conn: reports.frequency(conn, q.granularity, q.start, q.end))
    return FrequencyResult.model_validate(stamped({"granularity": q.granularity, "series": series}, current))


@declare(
    blueprint,
    "GET",
    "/v1/activity/lifecycle",
    summary="New, returning, resurrecting and dormant users per period",
    role="reader",
    query=WeeklyOrMonthlyQuery,
    result=LifecycleResult,
    waits=True,
)
def lifecycle(q: WeeklyOrMonthlyQuery) -> LifecycleResult:
    current = wait_for_position(q.min_position, q.wait_ms)
    series = _read(lambda conn: reports.lifecycle(conn, q.granularity, q.start, q.end))
    return LifecycleResult.model_validate(stamped({"granularity": q.granularity, "series": series}, current))


@declare(
    blueprint,
    "GET",
    "/v1/orders/repurchase",
    summary="Repurchase rate and days between orders over the range",
    role="reader",
    query=RepurchaseQuery,
    result=RepurchaseResult,
    waits=True,
)
def repurchase(q: RepurchaseQuery) -> RepurchaseResult:
    current = wait_for_position(q.min_position, q.wait_ms)
    body = _read(lambda conn: reports.repurchase(conn, q.start, q.end))
    dates = {"from": q.start.isoformat(), "to": q.end.isoformat()}
    return RepurchaseResult.model_validate(stamped({**dates, **body}, current))


def _read(query: Any) -> Any:
    with current_app.config["COHORTLINE"].read_engine.connect() as conn:
        return query(conn)
