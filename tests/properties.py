"""Random histories for the property tests, each one POST /v1/events would accept in its order, and
the adapters between the two sides compared: the code reads the events as the event store records
them (EventRecord), the reference as the sender wrote them (reference.Event)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, select

from domain.application import BLANK_CREATED_ON
from domain.envelope import parse_envelope
from domain.model import STREAM_CLASSES, StreamAggregate, stream_id
from projections.analytics import AnalyticsProjection
from projections.records import EventRecord
from projections.schema import metadata
from projections.search import attach_net_revenue, present_user, user_document
from projections.users import users
from tests import reference

BASE = datetime(2010, 12, 20, tzinfo=UTC)
"""Histories start before the analytics checks' range (2011-01-01) and may end after it."""
USER_IDS = ("u1", "u2", "u3", "17850", "客户-5", "u6", "u7", "u8", "u9", "u10", "u11", "u" * 128)
SCENES = ("shopping", "social", "content")
TOOLS = ("check_in", "coupon_center", "price_alert", "wishlist", "live_stream")
COUNTRIES = ("GB", "FR", "DE", "CN")
CHANNELS = ("app", "web", "mini_program", "store")
CURRENCIES = ("EUR", "GBP", "CNY")
OFFSETS = (0, 0, 0, 60, 180, 330, 345, 840, -300, -480, -720)
"""Minutes east of UTC of the senders' clocks: whole and half hours, Nepal's 5:45, both signs."""
TIERS = ("silver", "gold", "platinum")
TRACKED = ("Video Played", "Viewed Home Page", "视频播放")
GAPS = (0, 0, 1, 6, 7, 28, 31, 90, 91, 92)
"""Days after one of the user's earlier events: ties, the next day, week or month, and the edge of
the 90-day churn threshold."""

ALWAYS = (
    *["SessionStarted"] * 2,
    *["SceneVisited"] * 3,
    *["ToolUsed"] * 3,
    *["EventTracked"] * 2,
    "UserRegistered",
    "UserProfileUpdated",
    "MembershipChanged",
    "PointsEarned",
    "SatisfactionRated",
    "TicketOpened",
    "CouponIssued",
    *["OrderPlaced"] * 2,
)
"""What any user can do at any time, weighted by repetition."""


@dataclass
class Order:
    user_id: str
    at: datetime
    status: str = "placed"
    paid: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)


@dataclass
class Entity:
    """A coupon or a ticket: whose it is, when it last changed, and whether it is used up."""

    user_id: str
    at: datetime
    done: bool = False


@dataclass
class HistoryBuilder:
    """Draws events one at a time, each allowed by the domain rules given those before it: orders
    paid once after being placed, shipped after paid, refunded up to what was paid; coupons redeemed
    once by their owner; tickets resolved once; points never below zero; enrolments into a campaign
    that exists, once per user."""

    draw: Any
    users: Sequence[str]
    span_days: int
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    points: dict[str, int] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    coupons: dict[str, Entity] = field(default_factory=dict)
    tickets: dict[str, Entity] = field(default_factory=dict)
    campaigns: dict[str, datetime | None] = field(default_factory=dict)
    """campaign → the event time of its end"""
    enrolled: set[tuple[str, str]] = field(default_factory=set)
    times: dict[str, list[datetime]] = field(default_factory=dict)
    """user → the times of their events so far"""
    user: str = ""
    """whose event is being drawn"""

    def step(self) -> None:
        self.user = self.draw(st.sampled_from(self.users))
        type_ = self.draw(st.sampled_from([*ALWAYS, *self._possible(self.user)]))
        getattr(self, f"_{type_}")(self.user)

    def _possible(self, user: str) -> list[str]:
        mine = {oid: o for oid, o in self.orders.items() if o.user_id == user}
        statuses = [o.status for o in mine.values()]
        found = ["OrderPaid"] * 4 if "placed" in statuses else []
        found += ["OrderShipped"] * 2 if "paid" in statuses else []
        found += ["OrderDelivered"] * 2 if "shipped" in statuses else []
        found += ["OrderCancelled"] if {"placed", "paid"} & set(statuses) else []
        found += ["OrderRefunded"] * 3 if any(o.refunded < o.paid for o in mine.values()) else []
        found += ["PointsRedeemed"] if self.points.get(user, 0) > 0 else []
        found += ["CouponRedeemed"] * 2 if self._mine(self.coupons, user, open_only=True) else []
        found += ["TicketReplied"] * 2 if self._mine(self.tickets, user) else []
        found += ["TicketResolved"] * 2 if self._mine(self.tickets, user, open_only=True) else []
        found += ["CampaignCreated"] if len(self.campaigns) < 2 else []
        found += ["CampaignEnded"] if any(end is None for end in self.campaigns.values()) else []
        found += ["CampaignEnrolled"] * 2 if self._enrollable(user) else []
        return found

    @staticmethod
    def _mine(entities: dict[str, Entity], user: str, open_only: bool = False) -> list[str]:
        return sorted(k for k, e in entities.items() if e.user_id == user and not (open_only and e.done))

    def _enrollable(self, user: str) -> list[str]:
        """Campaigns the user is not in: open ones, and ended ones for an enrolment that happened
        before the end and arrives late (events.md)."""
        return sorted(c for c in self.campaigns if (c, user) not in self.enrolled)

    # time, money and context

    def _instant(self, after: datetime | None = None) -> datetime:
        """A random moment of the history, or a few GAPS after one of the user's earlier events, or
        up to two weeks after `after`."""
        earlier = self.times.get(self.user)
        if after is not None:
            at = after + timedelta(minutes=self.draw(st.integers(0, 14 * 1440)))
        elif earlier and self.draw(st.integers(0, 2)) == 0:
            at = self.draw(st.sampled_from(earlier)) + timedelta(days=self.draw(st.sampled_from(GAPS)))
        else:
            at = BASE + timedelta(minutes=self.draw(st.integers(0, self.span_days * 1440)))
        if self.draw(st.booleans()):
            at += timedelta(microseconds=self.draw(st.integers(0, 59_999_999)))
        return at

    def _text(self, at: datetime) -> str:
        """RFC 3339 with the offset of the sender's clock and as many fraction digits as needed."""
        offset = self.draw(st.sampled_from(OFFSETS))
        local = at.astimezone(timezone(timedelta(minutes=offset)))
        whole = local.strftime("%Y-%m-%dT%H:%M:%S")
        fraction = f".{local.microsecond:06d}".rstrip("0") if local.microsecond else ""
        zone = local.strftime("%z")
        zone = "Z" if offset == 0 and self.draw(st.booleans()) else f"{zone[:3]}:{zone[3:]}"
        return f"{whole}{fraction}{zone}"

    def _amount(self, low: int = 0, high: int | None = None) -> Decimal:
        """Up to 4 decimal places, between low and high ten-thousandths; by default mostly below
        10,000, sometimes up to the largest amount accepted (below 10^12)."""
        if high is None:
            high = self.draw(st.sampled_from([10**8, 10**8, 10**8, 10**16 - 1]))
        return Decimal(self.draw(st.integers(low, high))) / 10_000

    def _money(self, amount: Decimal) -> str:
        return f"{amount:.4f}" if self.draw(st.booleans()) else f"{amount.normalize():f}"

    def _context(self) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if self.draw(st.booleans()):
            context["country"] = self.draw(st.sampled_from(COUNTRIES))
        if self.draw(st.booleans()):
            context["channel"] = self.draw(st.sampled_from(CHANNELS))
        if self.draw(st.integers(0, 4)) == 0:
            context.update(platform="ios", session_id=f"s{len(self.envelopes)}")
        return context

    def _add(self, type_: str, user: str | None, at: datetime, **data: Any) -> None:
        envelope: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=len(self.envelopes) + 1)),
            "type": type_,
            "occurred_at": self._text(at),
            "data": {k: v for k, v in data.items() if v is not None},
        }
        if user is not None:
            envelope["user_id"] = user
            envelope["context"] = self._context()
            self.times.setdefault(user, []).append(at)
        self.envelopes.append(envelope)

    def _maybe(self, value: Any) -> Any:
        return value if self.draw(st.booleans()) else None

    def _pick(self, keys: Sequence[str]) -> str:
        return self.draw(st.sampled_from(sorted(keys)))

    # users and engagement

    def _UserRegistered(self, user: str) -> None:  # noqa: N802 - named after the event type
        self._add(
            "UserRegistered",
            user,
            self._instant(),
            channel=self._maybe(self.draw(st.sampled_from(CHANNELS))),
            referrer=self._maybe("friend"),
            attributes=self._maybe({"name": "Ada", "age": 36}),
        )

    def _UserProfileUpdated(self, user: str) -> None:  # noqa: N802
        self._add("UserProfileUpdated", user, self._instant(), attributes={"city": f"c{len(self.envelopes)}"})

    def _SessionStarted(self, user: str) -> None:  # noqa: N802
        self._add("SessionStarted", user, self._instant(), platform=self._maybe("android"))

    def _SceneVisited(self, user: str) -> None:  # noqa: N802
        scene = self.draw(st.sampled_from(SCENES))
        action = self._maybe(self.draw(st.sampled_from(["view", "like", "share", "comment", "follow"])))
        duration = self._maybe(self.draw(st.integers(0, 600_000)))
        self._add("SceneVisited", user, self._instant(), scene=scene, action=action, duration_ms=duration)

    def _ToolUsed(self, user: str) -> None:  # noqa: N802
        tool = self.draw(st.sampled_from(TOOLS))
        self._add("ToolUsed", user, self._instant(), tool=tool, action=self._maybe("open"))

    def _EventTracked(self, user: str) -> None:  # noqa: N802
        name = self.draw(st.sampled_from(TRACKED))
        self._add("EventTracked", user, self._instant(), name=name, properties=self._maybe({"seconds": 42}))

    def _MembershipChanged(self, user: str) -> None:  # noqa: N802
        self._add("MembershipChanged", user, self._instant(), tier=self.draw(st.sampled_from(TIERS)))

    def _PointsEarned(self, user: str) -> None:  # noqa: N802
        points = self.draw(st.integers(1, 500))
        self.points[user] = self.points.get(user, 0) + points
        self._add("PointsEarned", user, self._instant(), points=points, reason=self._maybe("review"))

    def _PointsRedeemed(self, user: str) -> None:  # noqa: N802
        points = self.draw(st.integers(1, self.points[user]))
        self.points[user] -= points
        orders = self._orders(user)
        order_id = self._maybe(self._pick(orders)) if orders else None
        self._add("PointsRedeemed", user, self._instant(), points=points, order_id=order_id)

    def _SatisfactionRated(self, user: str) -> None:  # noqa: N802
        tickets = self._mine(self.tickets, user)
        orders = self._orders(user)
        self._add(
            "SatisfactionRated",
            user,
            self._instant(),
            score=self.draw(st.integers(1, 5)),
            ticket_id=self._maybe(self._pick(tickets)) if tickets else None,
            order_id=self._maybe(self._pick(orders)) if orders else None,
            comment=self._maybe("fine"),
        )

    # orders

    def _OrderPlaced(self, user: str) -> None:  # noqa: N802
        order_id = f"o{len(self.orders) + 1}"
        at = self._instant()
        self.orders[order_id] = Order(user, at)
        amount = self._amount()
        items = [
            {
                "sku": "sku-1",
                "quantity": self.draw(st.integers(1, 3)),
                "unit_price": self._money(self._amount()),
            }
        ]
        coupons = self._mine(self.coupons, user)
        self._add(
            "OrderPlaced",
            user,
            at,
            order_id=order_id,
            amount=self._money(amount),
            currency=self._pick(CURRENCIES),
            items=self._maybe(items),
            coupon_id=self._maybe(self._pick(coupons)) if coupons else None,
        )

    def _orders(self, user: str, *statuses: str) -> list[str]:
        """The user's orders, in any of `statuses` when given."""
        return [
            o
            for o, order in self.orders.items()
            if order.user_id == user and (not statuses or order.status in statuses)
        ]

    def _order_of(self, user: str, *statuses: str) -> tuple[str, Order]:
        order_id = self._pick(self._orders(user, *statuses))
        return order_id, self.orders[order_id]

    def _follow(self, type_: str, order_id: str, order: Order, status: str | None, **data: Any) -> None:
        order.at = self._instant(after=order.at)
        order.status = status or order.status
        self._add(type_, order.user_id, order.at, order_id=order_id, **data)

    def _OrderPaid(self, user: str) -> None:  # noqa: N802
        order_id, order = self._order_of(user, "placed")
        order.paid = self._amount()
        self._follow(
            "OrderPaid", order_id, order, "paid", amount=self._money(order.paid), method=self._maybe("card")
        )

    def _OrderShipped(self, user: str) -> None:  # noqa: N802
        self._follow("OrderShipped", *self._order_of(user, "paid"), "shipped")

    def _OrderDelivered(self, user: str) -> None:  # noqa: N802
        self._follow("OrderDelivered", *self._order_of(user, "shipped"), "delivered")

    def _OrderCancelled(self, user: str) -> None:  # noqa: N802
        self._follow(
            "OrderCancelled", *self._order_of(user, "placed", "paid"), "cancelled", reason=self._maybe("late")
        )

    def _OrderRefunded(self, user: str) -> None:  # noqa: N802
        order_id = self._pick(
            [o for o, order in self.orders.items() if order.user_id == user and order.refunded < order.paid]
        )
        order = self.orders[order_id]
        amount = self._amount(1, int((order.paid - order.refunded) * 10_000))
        order.refunded += amount
        self._follow(
            "OrderRefunded", order_id, order, None, amount=self._money(amount), reason=self._maybe("damaged")
        )

    # coupons and campaigns

    def _CouponIssued(self, user: str) -> None:  # noqa: N802
        coupon_id = f"c{len(self.coupons) + 1}"
        at = self._instant()
        self.coupons[coupon_id] = Entity(user, at)
        campaign = self._maybe(self._pick(self.campaigns)) if self.campaigns else None
        value = self._money(self._amount(1, 1_000_000))
        self._add(
            "CouponIssued",
            user,
            at,
            coupon_id=coupon_id,
            campaign_id=campaign,
            value=value,
            currency=self._pick(CURRENCIES),
        )

    def _CouponRedeemed(self, user: str) -> None:  # noqa: N802
        coupon_id = self._pick(self._mine(self.coupons, user, open_only=True))
        coupon = self.coupons[coupon_id]
        coupon.done, coupon.at = True, self._instant(after=coupon.at)
        orders = self._orders(user)
        order_id = self._pick(orders) if orders else f"o-elsewhere-{coupon_id}"
        self._add("CouponRedeemed", user, coupon.at, coupon_id=coupon_id, order_id=order_id)

    def _CampaignCreated(self, user: str) -> None:  # noqa: N802
        campaign_id = f"k{len(self.campaigns) + 1}"
        self.campaigns[campaign_id] = None
        at = self._instant()
        kind = self.draw(st.sampled_from(["activity", "benefit", "incentive"]))
        self._add(
            "CampaignCreated",
            None,
            at,
            campaign_id=campaign_id,
            name="Spring",
            kind=kind,
            starts_at=self._text(at),
        )

    def _CampaignEnded(self, user: str) -> None:  # noqa: N802
        campaign_id = self._pick([c for c, end in self.campaigns.items() if end is None])
        end = self.campaigns[campaign_id] = self._instant()
        self._add("CampaignEnded", None, end, campaign_id=campaign_id)

    def _CampaignEnrolled(self, user: str) -> None:  # noqa: N802
        campaign_id = self._pick(self._enrollable(user))
        self.enrolled.add((campaign_id, user))
        group = self.draw(st.sampled_from(["treatment", "control"]))
        at, end = self._instant(), self.campaigns[campaign_id]
        if end is not None and at >= end:
            at = end - timedelta(minutes=self.draw(st.integers(1, 30 * 1440)))
        self._add("CampaignEnrolled", user, at, campaign_id=campaign_id, group=group)

    # customer service

    def _TicketOpened(self, user: str) -> None:  # noqa: N802
        ticket_id = f"t{len(self.tickets) + 1}"
        at = self._instant()
        self.tickets[ticket_id] = Entity(user, at)
        self._add(
            "TicketOpened",
            user,
            at,
            ticket_id=ticket_id,
            category=self._maybe("delivery"),
            subject=self._maybe("late"),
        )

    def _TicketReplied(self, user: str) -> None:  # noqa: N802
        ticket_id = self._pick(self._mine(self.tickets, user))
        ticket = self.tickets[ticket_id]
        ticket.at = self._instant(after=ticket.at)
        by = self.draw(st.sampled_from(["agent", "customer"]))
        self._add("TicketReplied", user, ticket.at, ticket_id=ticket_id, by=by)

    def _TicketResolved(self, user: str) -> None:  # noqa: N802
        ticket_id = self._pick(self._mine(self.tickets, user, open_only=True))
        ticket = self.tickets[ticket_id]
        ticket.done, ticket.at = True, self._instant(after=ticket.at)
        self._add("TicketResolved", user, ticket.at, ticket_id=ticket_id)


@st.composite
def histories(
    draw: Any, max_events: int = 60, spans: Sequence[int] = (7, 35, 140), max_users: int = len(USER_IDS)
) -> list[dict[str, Any]]:
    """Raw envelopes, as a sender posts them, of up to `max_users` users over one of `spans` days,
    in the order they are appended."""
    users = USER_IDS[: draw(st.integers(1, max_users))]
    builder = HistoryBuilder(draw, users, draw(st.sampled_from(spans)))
    for _ in range(draw(st.integers(1, max_events))):
        builder.step()
    return builder.envelopes


def recorded(envelopes: Iterable[dict[str, Any]]) -> list[EventRecord]:
    """The envelopes as the event store records them, positions 1..n: each validated as POST
    /v1/events validates it and checked against its stream's rules (a broken rule raises)."""
    streams: dict[uuid.UUID, StreamAggregate] = {}
    records = []
    for position, raw in enumerate(envelopes, start=1):
        envelope = parse_envelope(raw)
        kind = envelope.spec.stream
        key = stream_id(kind, envelope.stream_key)
        aggregate = streams.setdefault(key, STREAM_CLASSES[kind](key, BLANK_CREATED_ON))
        records.append(EventRecord.from_fact(aggregate.record(envelope), position))
    return records


def reference_events(envelopes: Iterable[dict[str, Any]]) -> list[reference.Event]:
    """The envelopes as the reference reads them: times in the sender's offset, amounts as Decimals."""
    return [
        reference.Event(
            position,
            raw["type"],
            raw.get("user_id"),
            datetime.fromisoformat(raw["occurred_at"]),
            {k: Decimal(v) if k in ("amount", "value") else v for k, v in raw["data"].items()},
            raw.get("context", {}),
        )
        for position, raw in enumerate(envelopes, start=1)
    ]


def as_reference(events: Iterable[EventRecord | reference.Event]) -> list[reference.Event]:
    """Events read from the log (EventRecord), or already the reference's, as the reference's."""
    return [
        e
        if isinstance(e, reference.Event)
        else reference.Event(e.position, e.type, e.user_id, e.occurred_at, e.data, e.context)
        for e in events
    ]


@st.composite
def arrivals(draw: Any, events: list[EventRecord]) -> list[list[EventRecord]]:
    """The same events in any order, cut into batches of any sizes."""
    shuffled = draw(st.permutations(events))
    batches, start = [], 0
    while start < len(shuffled):
        size = draw(st.integers(1, len(shuffled) - start))
        batches.append(list(shuffled[start : start + size]))
        start += size
    return batches


def expected_users(events: Iterable[EventRecord | reference.Event]) -> dict[str, dict[str, Any]]:
    """The user state rows by the reference definitions, over the whole history."""
    return reference.user_states(as_reference(events))


def clear_read_models(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def project(engine: Engine, batches: list[list[EventRecord]]) -> None:
    """Apply the batches, in their order, to emptied read models."""
    projection = AnalyticsProjection()
    clear_read_models(engine)
    for batch in batches:
        with engine.begin() as conn:
            projection.apply(conn, batch)


def projected_users(engine: Engine, batches: list[list[EventRecord]]) -> dict[str, dict[str, Any]]:
    """The user state rows of the read models after the batches, as the API presents them."""
    project(engine, batches)
    with engine.connect() as conn:
        return {user_id: present_user(document) for user_id, document in user_documents(conn).items()}


def user_documents(conn: Connection) -> dict[str, dict[str, Any]]:
    """user → their search document (exact money per currency), from the read models."""
    rows = [dict(r) for r in conn.execute(select(users)).mappings()]
    attach_net_revenue(conn, rows)
    return {row["user_id"]: user_document(row) for row in rows}
