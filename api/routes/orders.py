"""Repurchase and days between orders (api.md "Analytics", metrics.md "Orders and value"), read from
projections.orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flask import Blueprint
from pydantic import Field

from api.common import Stamped
from api.declared import declare
from api.ranges import LAST_DAY, DateRange, read
from projections.orders import repurchase as repurchase_answer
from projections.tracking import Progress

blueprint = Blueprint("orders", __name__)


class RepurchaseQuery(DateRange):
    period_limit: ClassVar[bool] = False
    rules: ClassVar[Mapping[str, str]] = {
        "from": DateRange.rules["from"],
        "to": f"on or before {LAST_DAY}, not before from",
    }


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
    "/v1/orders/repurchase",
    summary="Repurchase rate and days between orders over the range",
    role="reader",
    query=RepurchaseQuery,
    result=RepurchaseResult,
    waits=True,
)
def repurchase(q: RepurchaseQuery, current: Progress) -> dict[str, Any]:
    answer = read(lambda conn: repurchase_answer(conn, q.start, q.end))
    return {"from": q.start.isoformat(), "to": q.end.isoformat(), **answer}
