"""Campaigns: the list and each campaign's effect, treatment against control (api.md "Analytics",
metrics.md "Campaigns"), read from projections.campaigns."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from api.common import Freshness, Money, MoneyDifference, Rfc3339, Share, ShareDifference, Stamped
from api.declared import declare
from api.errors import ApiError
from api.ranges import read
from domain.catalogue import CAMPAIGN_KINDS
from projections.campaigns import campaign_effect, campaign_list
from projections.tracking import Progress

blueprint = Blueprint("campaigns", __name__)

Kind = Literal[CAMPAIGN_KINDS]  # type: ignore[valid-type]


class CampaignMembers(BaseModel):
    treatment: int = Field(ge=0)
    control: int = Field(ge=0)


class CampaignSummary(BaseModel):
    campaign_id: str
    name: str
    kind: Kind
    starts_at: Rfc3339 = Field(description="as declared by CampaignCreated")
    ends_at: Rfc3339 | None = Field(description="as declared by CampaignCreated; null when not declared")
    ended: bool = Field(description="whether its CampaignEnded is recorded")
    members: CampaignMembers = Field(description="enrolled users per group")


class CampaignList(Stamped):
    campaigns: list[CampaignSummary] = Field(description="ordered by starts_at, then campaign_id")


class CampaignGroup(BaseModel):
    members: int = Field(ge=0)
    ordered_7d: Share | None = Field(description="share with an OrderPlaced within 7 days of enrolment")
    ordered_30d: Share | None = Field(description="share with an OrderPlaced within 30 days of enrolment")
    active_after_7d: Share | None = Field(description="share active on or after day 7 after enrolment")
    active_after_30d: Share | None = Field(description="share active on or after day 30 after enrolment")
    coupons_redeemed: int = Field(ge=0, description="redemptions of coupons issued with this campaign")
    net_revenue_30d: dict[str, Money] = Field(
        description="by ISO 4217 currency: mean net revenue per member within 30 days of enrolment"
    )


class CampaignGroups(BaseModel):
    treatment: CampaignGroup
    control: CampaignGroup


class CampaignUplift(BaseModel):
    ordered_7d: ShareDifference
    ordered_30d: ShareDifference
    active_after_7d: ShareDifference
    active_after_30d: ShareDifference
    net_revenue_30d: dict[str, MoneyDifference] = Field(
        description="by ISO 4217 currency seen in either group (a group without it has mean 0)"
    )


class CampaignEffect(Stamped):
    campaign: CampaignSummary
    groups: CampaignGroups
    uplift: CampaignUplift
    complete_7d: bool = Field(description="every member's enrolment + 7 days is at or before the watermark")
    complete_30d: bool = Field(description="every member's enrolment + 30 days is at or before the watermark")


@declare(
    blueprint,
    "GET",
    "/v1/campaigns",
    summary="Every campaign with its members per group",
    role="reader",
    query=Freshness,
    result=CampaignList,
    waits=True,
)
def campaigns(q: Freshness, current: Progress) -> dict[str, Any]:
    return {"campaigns": read(campaign_list)}


@declare(
    blueprint,
    "GET",
    "/v1/campaigns/<text:campaign_id>/effect",
    summary="A campaign's outcomes per group and the uplift of treatment over control",
    role="reader",
    query=Freshness,
    result=CampaignEffect,
    errors=(404,),
    waits=True,
    path_parameters={"campaign_id": {"type": "string"}},
)
def effect(q: Freshness, current: Progress, campaign_id: str) -> dict[str, Any]:
    found = read(lambda conn: campaign_effect(conn, campaign_id, current.watermark))
    if found is None:
        raise ApiError(404, "campaign_not_found", f"no campaign {campaign_id!r}")
    return found
