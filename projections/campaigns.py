"""Campaigns, the lever of operations (metrics.md "Campaigns"): each campaign as declared, its
members with their group and enrolment time, and the coupons issued for it and redeemed; the
campaign list and each campaign's effect are read from them.

- `rm_campaigns`: per campaign its declaration and whether its `CampaignEnded` is recorded;
- `rm_campaign_members`: per campaign and member the group and enrolment time `e`;
- `rm_coupons`: the campaign each coupon was issued for;
- `rm_coupon_redemptions`: every `CouponRedeemed`, by whom.

Every row is set from one event and kept whatever arrives later (or the earliest, for an
enrolment), so the answers do not depend on arrival order or batching."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Connection, DateTime, String, Table, func, select, true

from domain.envelope import format_timestamp, parse_timestamp
from projections.activity import last_active_times
from projections.intervals import compare_groups
from projections.orders import order_times
from projections.records import EventRecord
from projections.schema import aware_utc, metadata, naive_utc
from projections.sql import upsert, upsert_rows
from projections.value import window_revenue

GROUPS = ("treatment", "control")
SHARES = ("ordered_7d", "ordered_30d", "active_after_7d", "active_after_30d")
DAY = timedelta(days=1)

campaigns = Table(
    "rm_campaigns",
    metadata,
    Column("campaign_id", String(128), primary_key=True),
    Column("name", String(500)),
    Column("kind", String(32)),
    Column("starts_at", DateTime()),
    Column("ends_at", DateTime()),
    Column("ended", Boolean, nullable=False),
)

campaign_members = Table(
    "rm_campaign_members",
    metadata,
    Column("campaign_id", String(128), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("group", String(16), nullable=False),
    Column("enrolled_at", DateTime(), nullable=False),
    Column("position", BigInteger, nullable=False),
)

coupons = Table(
    "rm_coupons",
    metadata,
    Column("coupon_id", String(128), primary_key=True),
    Column("campaign_id", String(128), index=True),
)

coupon_redemptions = Table(
    "rm_coupon_redemptions",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("coupon_id", String(128), nullable=False, index=True),
    Column("user_id", String(128), nullable=False),
)


def apply_campaigns(conn: Connection, events: Sequence[EventRecord]) -> None:
    created = [_declared(e) for e in events if e.type == "CampaignCreated"]
    ended = sorted({e.data["campaign_id"] for e in events if e.type == "CampaignEnded"})
    _write_campaigns(conn, created, ended)
    _write_members(conn, [e for e in events if e.type == "CampaignEnrolled"])
    upsert_rows(
        conn,
        coupons,
        [
            {"coupon_id": e.data["coupon_id"], "campaign_id": e.data.get("campaign_id")}
            for e in events
            if e.type == "CouponIssued"
        ],
        None,
    )
    upsert_rows(
        conn,
        coupon_redemptions,
        [
            {"position": e.position, "coupon_id": e.data["coupon_id"], "user_id": e.user_id}
            for e in events
            if e.type == "CouponRedeemed"
        ],
        None,
    )


def _declared(event: EventRecord) -> dict[str, Any]:
    data = event.data
    return {
        "campaign_id": data["campaign_id"],
        "name": data["name"],
        "kind": data["kind"],
        "starts_at": naive_utc(_instant(data["starts_at"])),
        "ends_at": naive_utc(_instant(data.get("ends_at"))),
        "ended": False,
    }


def _instant(value: datetime | str | None) -> datetime | None:
    """A declared timestamp as the event holds it: parsed, or as the wire wrote it."""
    return parse_timestamp(value) if isinstance(value, str) else value


def _write_campaigns(conn: Connection, created: list[dict[str, Any]], ended: list[str]) -> None:
    """A declaration fills its row, an end marks it; either may arrive first."""
    declared = ("name", "kind", "starts_at", "ends_at")
    if created:
        statement = upsert(conn, campaigns)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[campaigns.c.campaign_id],
                set_={name: statement.excluded[name] for name in declared},
            ),
            created,
        )
    if ended:
        statement = upsert(conn, campaigns)
        conn.execute(
            statement.on_conflict_do_update(index_elements=[campaigns.c.campaign_id], set_={"ended": true()}),
            [{"campaign_id": c, "ended": True, **dict.fromkeys(declared)} for c in ended],
        )


def _write_members(conn: Connection, enrolments: list[EventRecord]) -> None:
    """Keep each member's earliest enrolment (events.md allows one per campaign and user)."""
    earliest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in enrolments:
        assert e.user_id is not None
        key = (e.data["campaign_id"], e.user_id)
        row = {
            "campaign_id": key[0],
            "user_id": key[1],
            "group": e.data["group"],
            "enrolled_at": naive_utc(e.occurred_at),
            "position": e.position,
        }
        if key not in earliest or _sooner(row, earliest[key]):
            earliest[key] = row
    if not earliest:
        return
    statement = upsert(conn, campaign_members)
    new, c = statement.excluded, campaign_members.c
    sooner = (new.enrolled_at < c.enrolled_at) | (
        (new.enrolled_at == c.enrolled_at) & (new.position < c.position)
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[c.campaign_id, c.user_id],
            set_={name: new[name] for name in ("group", "enrolled_at", "position")},
            where=sooner,
        ),
        [earliest[key] for key in sorted(earliest)],
    )


def _sooner(row: dict[str, Any], other: dict[str, Any]) -> bool:
    return (row["enrolled_at"], row["position"]) < (other["enrolled_at"], other["position"])


def campaign_list(conn: Connection) -> list[dict[str, Any]]:
    """Every declared campaign by `starts_at` then id, with its members per group."""
    m = campaign_members.c
    counts = select(m.campaign_id, m.group, func.count()).group_by(m.campaign_id, m.group)
    members: dict[str, dict[str, int]] = {}
    for campaign_id, group, n in conn.execute(counts):
        members.setdefault(campaign_id, dict.fromkeys(GROUPS, 0))[group] = n
    c = campaigns.c
    query = select(campaigns).where(c.name.isnot(None)).order_by(c.starts_at, c.campaign_id)
    return [_listed(row, members.get(row["campaign_id"])) for row in conn.execute(query).mappings()]


def _listed(row: Any, members: dict[str, int] | None) -> dict[str, Any]:
    return {
        "campaign_id": row["campaign_id"],
        "name": row["name"],
        "kind": row["kind"],
        "starts_at": format_timestamp(row["starts_at"]),
        "ends_at": format_timestamp(row["ends_at"]),
        "ended": row["ended"],
        "members": members or dict.fromkeys(GROUPS, 0),
    }


def campaign_effect(conn: Connection, campaign_id: str, watermark: datetime | None) -> dict[str, Any] | None:
    """Per group the members' outcomes after their enrolment, the uplift of treatment over control
    with 95 % intervals, and whether every member's 7 and 30 days have passed; None for a campaign
    never declared."""
    c = campaigns.c
    row = (
        conn.execute(select(campaigns).where(c.campaign_id == campaign_id, c.name.isnot(None)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    m = campaign_members.c
    enrolled = {
        user: (aware_utc(at), group)
        for user, at, group in conn.execute(
            select(m.user_id, m.enrolled_at, m.group).where(m.campaign_id == campaign_id)
        )
    }
    outcomes = _outcomes(conn, campaign_id, enrolled)
    figures, uplift = compare_groups(outcomes["treatment"], outcomes["control"], SHARES, "net_revenue_30d")
    groups = {
        g: {
            "members": len(outcomes[g]),
            **shown,
            "coupons_redeemed": sum(o["coupons_redeemed"] for o in outcomes[g]),
        }
        for g, shown in zip(GROUPS, figures, strict=True)
    }
    counts = {g: groups[g]["members"] for g in GROUPS}
    return {
        "campaign": _listed(row, counts),
        "groups": groups,
        "uplift": uplift,
        "complete_7d": _complete(enrolled, 7, watermark),
        "complete_30d": _complete(enrolled, 30, watermark),
    }


def _outcomes(
    conn: Connection, campaign_id: str, enrolled: dict[str, tuple[datetime, str]]
) -> dict[str, list[dict[str, Any]]]:
    """Per group, each member's outcomes after their enrolment time e."""
    placed = order_times(conn, enrolled)
    last_active = last_active_times(conn, enrolled)
    redeemed = _redeemed(conn, campaign_id)
    revenue = window_revenue(conn, {u: (at, at + 30 * DAY) for u, (at, _) in enrolled.items()})
    found: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for user, (at, group) in sorted(enrolled.items()):
        times, last = placed.get(user, ()), last_active.get(user)
        found[group].append(
            {
                "ordered_7d": any(at <= t < at + 7 * DAY for t in times),
                "ordered_30d": any(at <= t < at + 30 * DAY for t in times),
                "active_after_7d": last is not None and last >= at + 7 * DAY,
                "active_after_30d": last is not None and last >= at + 30 * DAY,
                "coupons_redeemed": redeemed.get(user, 0),
                "net_revenue_30d": revenue.get(user, {}),
            }
        )
    return found


def _redeemed(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Per user, their redemptions of coupons issued for the campaign."""
    r, k = coupon_redemptions.c, coupons.c
    query = (
        select(r.user_id, func.count())
        .join_from(coupon_redemptions, coupons, r.coupon_id == k.coupon_id)
        .where(k.campaign_id == campaign_id)
        .group_by(r.user_id)
    )
    return dict(conn.execute(query).tuples().all())


def _complete(enrolled: dict[str, tuple[datetime, str]], days: int, watermark: datetime | None) -> bool:
    if not enrolled:
        return True
    return watermark is not None and all(at + days * DAY <= watermark for at, _ in enrolled.values())
