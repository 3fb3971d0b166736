"""Query and result pieces that several routes declare: dates and times as the contract writes them,
the freshness parameters, and the stamp every analytics answer carries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from api.declared import Query
from api.freshness import MAX_WAIT_MS
from domain.envelope import parse_timestamp


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD (Python's fromisoformat also takes week dates and compact forms)."""
    if isinstance(value, str) and (len(value) != 10 or value[4] != "-" or value[7] != "-"):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        parsed = parse_timestamp(value)
        if parsed is None:
            raise ValueError("must be an RFC 3339 timestamp with offset")
        return parsed
    return value


POSITION_MAX = 2**63 - 1
"""The greatest log position or version the store's BIGINT columns hold."""

Day = Annotated[date, BeforeValidator(_iso_date)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Rfc3339 = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Money = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", description="decimal, rounded half-even to 2 places")]


Share = Annotated[float, Field(ge=0, le=1, description="a share rounded to 4 places")]
Difference = Annotated[float, Field(description="a difference of shares rounded to 4 places")]


class ShareDifference(BaseModel):
    value: Difference | None = Field(
        description="the first group's share minus the second's; null when a group is empty"
    )
    ci95: tuple[Difference, Difference] | None = Field(
        description="95 % interval (Wald, unpooled); null when a group has fewer than 2 members"
    )


class MoneyDifference(BaseModel):
    value: Money | None = Field(
        description="the first group's mean minus the second's; null when a group is empty"
    )
    ci95: tuple[Money, Money] | None = Field(
        description="95 % interval (Welch); null when a group has fewer than 2 members"
    )


class NoParameters(Query):
    """A route that takes no query parameters (any given is refused)."""


class Freshness(Query):
    min_position: int | None = Field(
        None, ge=0, le=POSITION_MAX, description="wait until the read models reach this position"
    )
    wait_ms: int = Field(0, ge=0, le=MAX_WAIT_MS, description="how long to wait for min_position")


class Stamped(BaseModel):
    as_of: int = Field(description="log position the read models have applied")
    watermark: Rfc3339 | None = Field(description="greatest event time applied")
