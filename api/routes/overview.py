"""The overview: scale, efficiency, quality and value over a range and the period before it
(api.md "Analytics", metrics.md "Overview"), read from projections.overview."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Money, Share, Stamped
from api.declared import declare
from api.ranges import DateRange, read
from projections.overview import overview as overview_figures
from projections.tracking import Progress

blueprint = Blueprint("overview", __name__)


class OverviewScale(BaseModel):
    active_users: int = Field(ge=0, description="distinct active users in the range")
    new_users: int = Field(ge=0, description="users first seen in the range")
    retained_users: int = Field(ge=0, description="active in the range and in the period before")
    orders: int = Field(ge=0, description="OrderPlaced in the range")


class OverviewEfficiency(BaseModel):
    activation_rate: Share | None = Field(
        description="among signups in the range with signup + 30 days at or before the watermark, the share "
        "with an OrderPlaced within 30 days of signup"
    )
    repurchase_rate: Share | None = Field(
        description="customers with 2 or more orders placed in the range over those with 1 or more"
    )


class OverviewQuality(BaseModel):
    retention_d30: Share | None = Field(
        description="among users first seen in the range with first seen + 30 days at or before the "
        "watermark, the share active on or after day 30"
    )
    csat: Share | None = Field(description="share of the range's ratings with score 4 or 5")


class OverviewValue(BaseModel):
    net_revenue: dict[str, Money] = Field(description="by ISO 4217 currency: net revenue in the range")
    arpu: dict[str, Money] = Field(description="by currency: net revenue over every active user")
    ltv_90d: dict[str, Money] = Field(
        description="by currency: mean net revenue within 90 days of first seen, among users first seen in "
        "the range with first seen + 90 days at or before the watermark"
    )


class OverviewFigures(BaseModel):
    scale: OverviewScale
    efficiency: OverviewEfficiency
    quality: OverviewQuality
    value: OverviewValue


class OverviewResult(Stamped):
    scale: OverviewScale
    efficiency: OverviewEfficiency
    quality: OverviewQuality
    value: OverviewValue
    previous: OverviewFigures = Field(
        description="the same figures over as many days just before `from`, as if queried themselves"
    )


@declare(
    blueprint,
    "GET",
    "/v1/overview",
    summary="Scale, efficiency, quality and value over the range, and over the period before it",
    role="reader",
    query=DateRange,
    result=OverviewResult,
    waits=True,
)
def overview(q: DateRange, current: Progress) -> dict[str, Any]:
    return read(lambda conn: overview_figures(conn, q.start, q.end, current.watermark))
