"""Customer service: tickets, response and resolution times, ratings and retention by score
(api.md "Analytics", metrics.md "Customer service"), read from projections.service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Share, Stamped
from api.declared import declare
from api.ranges import DateRange, read
from projections.service import satisfaction as satisfaction_figures
from projections.tracking import Progress

blueprint = Blueprint("service", __name__)

Hours = Annotated[float, Field(description="hours rounded to 2 places")]
Score = Annotated[float, Field(ge=1, le=5, description="a mean score rounded to 4 places")]


class SatisfactionQuery(DateRange):
    granularity: Literal["week", "month"] = Field("month", description="period length")


class ServicePeriod(BaseModel):
    period: str
    opened: int = Field(ge=0, description="tickets opened in the period")
    resolved: int = Field(ge=0, description="tickets whose first resolution is in the period")
    median_resolution_hours: Hours | None = Field(description="over the tickets resolved in the period")
    p90_resolution_hours: Hours | None = Field(description="over the tickets resolved in the period")
    median_first_response_hours: Hours | None = Field(
        description="over the tickets whose first agent reply is in the period"
    )
    ratings: int = Field(ge=0, description="SatisfactionRated events in the period")
    avg_score: Score | None = Field(description="the mean score of the ratings in the period")
    csat: Share | None = Field(description="share of the ratings with score 4 or 5")


class ScoreBucket(BaseModel):
    bucket: Literal["1-2", "3", "4-5"]
    ratings: int = Field(ge=0, description="ratings in the range with a score in the bucket")
    mature: int = Field(ge=0, description="those whose time + 30 days is at or before the watermark")
    retained_30d: Share | None = Field(
        description="share of the mature ratings whose user is active on or after day 30 after it"
    )


class SatisfactionResult(Stamped):
    granularity: Literal["week", "month"]
    series: list[ServicePeriod]
    retention_by_score: list[ScoreBucket]


@declare(
    blueprint,
    "GET",
    "/v1/service/satisfaction",
    summary="Tickets, resolution and first-response hours, ratings and CSAT per period; retention by score",
    role="reader",
    query=SatisfactionQuery,
    result=SatisfactionResult,
    waits=True,
)
def satisfaction(q: SatisfactionQuery, current: Progress) -> dict[str, Any]:
    found = read(lambda conn: satisfaction_figures(conn, q.granularity, q.start, q.end, current.watermark))
    return {"granularity": q.granularity, **found}
