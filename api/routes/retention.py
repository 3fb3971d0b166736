"""Retention cohorts (api.md "Analytics", metrics.md "Retention"), read from projections.retention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from flask import Blueprint
from pydantic import BaseModel, Field, model_validator

from api.common import Stamped
from api.declared import QueryError, declare
from api.feature_names import FEATURE, KNOWN_RULE, require_known
from api.ranges import MAX_PERIODS, DateRange, read
from projections.retention import retention as retention_cohorts
from projections.tracking import Progress

blueprint = Blueprint("retention", __name__)


Feature = Annotated[str, Field(pattern=FEATURE, description="scene:<scene> or tool:<tool>")]


class RetentionQuery(DateRange):
    rules: ClassVar[Mapping[str, str]] = {
        **DateRange.rules,
        "periods": "at most " + ", ".join(f"{n} for {g}" for g, n in MAX_PERIODS.items()),
        "cohort": KNOWN_RULE,
        "return": KNOWN_RULE,
    }

    granularity: Literal["day", "week", "month"] = Field("month", description="period length")
    cohort: Literal["first_seen", "signup", "first_order"] | Feature = Field(
        "first_seen", description="cohort definition: a first time, or a feature's adoption"
    )
    returns: Literal["active", "order"] | Feature = Field(
        "active",
        alias="return",
        description="what counts as a return: any activity, an order, a feature's use",
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


@declare(
    blueprint,
    "GET",
    "/v1/retention/cohorts",
    summary="Retention cohorts",
    role="reader",
    query=RetentionQuery,
    result=RetentionResult,
    errors=(422,),
    waits=True,
)
def retention(q: RetentionQuery, current: Progress) -> dict[str, Any]:
    require_known({"cohort": q.cohort, "return": q.returns})
    cohorts = read(
        lambda conn: retention_cohorts(
            conn, q.granularity, q.cohort, q.returns, q.mode, q.start, q.end, q.offsets(), current.watermark,
            q.breakdown,
        )
    )  # fmt: skip
    asked = {"granularity": q.granularity, "cohort": q.cohort, "return": q.returns, "mode": q.mode}
    return asked | ({"breakdown": q.breakdown} if q.breakdown else {}) | {"cohorts": cohorts}
