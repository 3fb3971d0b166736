"""Activity: active users, stickiness, frequency and lifecycle counts (api.md "Analytics", metrics.md
"Activity"), read from projections.activity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Stamped
from api.declared import declare
from api.feature_names import ACTIVITY_FILTER, ACTIVITY_FILTER_RULE, require_known
from api.ranges import DateRange, read
from projections import activity
from projections.tracking import Progress

blueprint = Blueprint("activity", __name__)


class ActiveUsersQuery(DateRange):
    rules: ClassVar[Mapping[str, str]] = {**DateRange.rules, "filter": ACTIVITY_FILTER_RULE}

    granularity: Literal["day", "week", "month"] = Field("day", description="period length")
    filter: str | None = Field(
        None,
        pattern=ACTIVITY_FILTER,
        description="scene:<scene>, tool:<tool name> or event:<tracked event name>",
    )


class WeeklyOrMonthlyQuery(DateRange):
    granularity: Literal["week", "month"] = Field("week", description="period length")


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


@declare(
    blueprint,
    "GET",
    "/v1/activity/active-users",
    summary="Distinct active users per period",
    role="reader",
    query=ActiveUsersQuery,
    result=ActiveUsersResult,
    errors=(422,),
    waits=True,
)
def active_users(q: ActiveUsersQuery, current: Progress) -> dict[str, Any]:
    if q.filter:
        require_known({"filter": q.filter})
    kind = q.filter or "active"
    series = read(lambda conn: activity.active_users(conn, q.granularity, q.start, q.end, kind))
    return {"granularity": q.granularity, "series": series} | ({"filter": q.filter} if q.filter else {})


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
def stickiness(q: DateRange, current: Progress) -> dict[str, Any]:
    return {"series": read(lambda conn: activity.stickiness(conn, q.start, q.end))}


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
def frequency(q: WeeklyOrMonthlyQuery, current: Progress) -> dict[str, Any]:
    series = read(lambda conn: activity.frequency(conn, q.granularity, q.start, q.end))
    return {"granularity": q.granularity, "series": series}


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
def lifecycle(q: WeeklyOrMonthlyQuery, current: Progress) -> dict[str, Any]:
    series = read(lambda conn: activity.lifecycle_counts(conn, q.granularity, q.start, q.end))
    return {"granularity": q.granularity, "series": series}
