"""Value: revenue per period and currency, and LTV by cohort (api.md "Analytics", metrics.md "Orders
and value"), read from projections.value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from flask import Blueprint
from pydantic import BaseModel, Field, model_validator

from api.common import Money, Stamped
from api.declared import QueryError, declare
from api.ranges import MAX_PERIODS, DateRange, read
from projections.tracking import Progress
from projections.value import ltv as ltv_cohorts
from projections.value import revenue as revenue_series

blueprint = Blueprint("value", __name__)


class RevenueQuery(DateRange):
    granularity: Literal["day", "week", "month"] = Field("month", description="period length")


class CurrencyRevenue(BaseModel):
    paid: Money = Field(description="OrderPaid amounts in the period")
    refunded: Money = Field(description="OrderRefunded amounts in the period")
    net: Money = Field(description="paid minus refunded")
    orders_paid: int = Field(description="OrderPaid events in the period")
    arpu: Money | None = Field(description="net over the period's active users; null when none")


class RevenuePeriod(BaseModel):
    period: str
    currencies: dict[str, CurrencyRevenue] = Field(
        description="by ISO 4217 currency of the order; a currency without payments or refunds is left out"
    )
    active_users: int


class RevenueResult(Stamped):
    granularity: str
    series: list[RevenuePeriod]


@declare(
    blueprint,
    "GET",
    "/v1/value/revenue",
    summary="Paid, refunded and net revenue, payments and ARPU per period and currency",
    role="reader",
    query=RevenueQuery,
    result=RevenueResult,
    waits=True,
)
def revenue(q: RevenueQuery, current: Progress) -> dict[str, Any]:
    series = read(lambda conn: revenue_series(conn, q.granularity, q.start, q.end))
    return {"granularity": q.granularity, "series": series}


LTV_GRANULARITIES = ("week", "month")


class LtvQuery(DateRange):
    rules: ClassVar[Mapping[str, str]] = {
        **DateRange.rules,
        "periods": "at most "
        + ", ".join(f"{n} for {g}" for g, n in MAX_PERIODS.items() if g in LTV_GRANULARITIES),
    }

    granularity: Literal["week", "month"] = Field("month", description="period length")
    cohort: Literal["first_seen", "signup", "first_order"] = Field(
        "first_seen", description="cohort definition"
    )
    periods: int | None = Field(
        None,
        ge=0,
        le=max(MAX_PERIODS[g] for g in LTV_GRANULARITIES),
        description="offsets 0..periods (default: to the range's end)",
    )

    @model_validator(mode="after")
    def _periods_bounded(self) -> LtvQuery:
        if self.periods is not None and self.periods > MAX_PERIODS[self.granularity]:
            raise QueryError("periods", f"must be an integer from 0 to {MAX_PERIODS[self.granularity]}")
        return self

    def offsets(self) -> int:
        return self.periods if self.periods is not None else self.periods_in_range() - 1


class LtvCohort(BaseModel):
    cohort: str = Field(description="the cohort's period label")
    size: int = Field(description="members of the cohort")
    currencies: dict[str, list[Money]] = Field(
        description="by ISO 4217 currency of the order: the members' cumulative net revenue in periods "
        "C .. C+k over the cohort's size, at offsets 0..; a currency no member spent in is left out"
    )
    complete: list[bool] = Field(description="whether each offset's period has ended by the watermark")


class LtvResult(Stamped):
    granularity: Literal["week", "month"]
    cohort: Literal["first_seen", "signup", "first_order"]
    cohorts: list[LtvCohort]


@declare(
    blueprint,
    "GET",
    "/v1/value/ltv",
    summary="Cumulative net revenue per cohort member, per currency, at offsets 0..periods",
    role="reader",
    query=LtvQuery,
    result=LtvResult,
    waits=True,
)
def ltv(q: LtvQuery, current: Progress) -> dict[str, Any]:
    cohorts = read(
        lambda conn: ltv_cohorts(
            conn, q.granularity, q.cohort, q.start, q.end, q.offsets(), current.watermark
        )
    )
    return {"granularity": q.granularity, "cohort": q.cohort, "cohorts": cohorts}
