"""Scenes and tools: the feature report and a feature's impact (api.md "Analytics", metrics.md
"Scenes and tools"), read from projections.features. Feature retention is asked of
/v1/retention/cohorts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Money, MoneyDifference, Share, ShareDifference, Stamped
from api.declared import declare
from api.errors import ApiError
from api.feature_names import FEATURE, KNOWN_RULE, require_known
from api.ranges import DateRange, read
from projections.features import NOTE, feature_impact, feature_report
from projections.tracking import Progress

blueprint = Blueprint("features", __name__)


class FeatureRow(BaseModel):
    feature: str = Field(description="scene:<scene> or tool:<tool>")
    adopted: int = Field(ge=0, description="users whose first use lies in the range")
    users: int = Field(ge=0, description="distinct users using it in the range")
    uses: int = Field(ge=0, description="its events in the range")
    share_of_active: Share | None = Field(description="users over the distinct active users in the range")
    repeat_7d: Share | None = Field(
        description="among users who adopted it in the range with adoption + 7 days at or before the "
        "watermark, the share who used it again on or after day 7 after adoption; null when none"
    )


class FeatureReport(Stamped):
    features: list[FeatureRow] = Field(
        description="every feature used in the range, most users first, then by name"
    )


class ImpactQuery(DateRange):
    rules: ClassVar[Mapping[str, str]] = {**DateRange.rules, "feature": KNOWN_RULE}


class ImpactGroup(BaseModel):
    users: int = Field(ge=0)
    retained_d30: Share | None = Field(description="share active on or after day 30 after first seen")
    ordered_d30: Share | None = Field(description="share with an OrderPlaced within 30 days of first seen")
    net_revenue_d30: dict[str, Money] = Field(
        description="by ISO 4217 currency: mean net revenue within 30 days of first seen"
    )


class ImpactGroups(BaseModel):
    adopters: ImpactGroup = Field(description="adopted the feature within 7 days of first seen")
    others: ImpactGroup


class ImpactDifference(BaseModel):
    retained_d30: ShareDifference
    ordered_d30: ShareDifference
    net_revenue_d30: dict[str, MoneyDifference] = Field(
        description="by ISO 4217 currency seen in either group (a group without it has mean 0)"
    )


class FeatureImpact(Stamped):
    feature: str
    groups: ImpactGroups = Field(
        description="users first seen in the range with first seen + 30 days at or before the watermark"
    )
    difference: ImpactDifference
    note: Literal[NOTE] = Field(  # type: ignore[valid-type]
        description="adopters chose the feature: the difference is not its effect"
    )


@declare(
    blueprint,
    "GET",
    "/v1/features",
    summary="Every scene and tool used in the range: adoption, users, uses, share of active, repeat use",
    role="reader",
    query=DateRange,
    result=FeatureReport,
    waits=True,
)
def features(q: DateRange, current: Progress) -> dict[str, Any]:
    return {"features": read(lambda conn: feature_report(conn, q.start, q.end, current.watermark))}


@declare(
    blueprint,
    "GET",
    "/v1/features/<text:feature>/impact",
    summary="Users who adopted a feature within 7 days of first seen against the rest: correlation, "
    "not causation",
    role="reader",
    query=ImpactQuery,
    result=FeatureImpact,
    errors=(422,),
    waits=True,
    path_parameters={"feature": {"type": "string", "pattern": FEATURE}},
)
def impact(q: ImpactQuery, current: Progress, feature: str) -> dict[str, Any]:
    if re.fullmatch(FEATURE, feature) is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "feature must be scene:<scene> or tool:<tool>",
            [{"field": "feature", "message": f"must match {FEATURE}"}],
        )
    require_known({"feature": feature})
    return read(lambda conn: feature_impact(conn, feature, q.start, q.end, current.watermark))
