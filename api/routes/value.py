"""Value: revenue per period and currency (api.md "Analytics", metrics.md "Orders and value"), read
from projections.value."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Money, Stamped
from api.declared import declare
from api.ranges import DateRange, read
from projections.tracking import Progress
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
