"""Aggregates: one stream per user, order, campaign, coupon and ticket, each guarding its rules."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import datetime_now_with_tzinfo

from domain.envelope import Envelope
from domain.errors import DomainConflict
from domain.events import EVENT_CLASSES, Fact, register_stream

STREAM_NAMESPACE = UUID("6f1d3b1e-4f59-4c1f-9d35-8b7c3f0f2a10")
ERASED = "[erased]"


@lru_cache(maxsize=200_000)
def stream_id(kind: str, key: str) -> UUID:
    """The deterministic id of the stream of `kind` named `key` (e.g. the order "A-17")."""
    return uuid5(STREAM_NAMESPACE, f"{kind}:{key}")


class StreamAggregate:
    """An event-sourced aggregate whose events are catalogue facts.

    `record` checks the rules for a new fact and appends it; `when` applies a stored fact to the
    state. Subclasses declare `checks` and `appliers`, keyed by catalogue type.
    """

    kind: ClassVar[str]
    checks: ClassVar[dict[str, Callable[[Any, Envelope], None]]] = {}
    appliers: ClassVar[dict[str, Callable[[Any, Fact], None]]] = {}

    def __init__(self, id: UUID, created_on: datetime):
        self.id = id
        self.version = 0
        self.created_on = created_on
        self.modified_on = created_on
        self.pending_events: list[Fact] = []

    def __init_subclass__(cls) -> None:
        register_stream(cls.kind, cls)

    @property
    def exists(self) -> bool:
        return self.version > 0

    def record(self, envelope: Envelope) -> Fact:
        check = self.checks.get(envelope.type)
        if check is not None:
            check(self, envelope)
        event = EVENT_CLASSES[envelope.type](
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=datetime_now_with_tzinfo(),
            event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
            user_id=envelope.user_id,
            context=envelope.context,
            data=envelope.data,
        )
        event.mutate(self)
        self.pending_events.append(event)
        return event

    def when(self, event: Fact) -> None:
        apply = self.appliers.get(event.type_name())
        if apply is not None:
            apply(self, event)

    def collect_events(self) -> list[Fact]:
        events, self.pending_events = self.pending_events, []
        return events

    def clone(self) -> StreamAggregate:
        """A copy that can change without changing this one (containers copied; their values are
        never mutated in place)."""
        twin = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, (dict, list)):
                setattr(twin, name, value.copy())
        return twin

    def state(self) -> dict[str, Any]:
        """The entity's state for auditors, without the bookkeeping attributes."""
        hidden = {"pending_events", "created_on", "modified_on"}
        return {k: v for k, v in vars(self).items() if k not in hidden}


def _conflict(code: str, message: str) -> DomainConflict:
    return DomainConflict(code, message)


class User(StreamAggregate):
    kind = "user"

    def __init__(self, id: UUID, created_on: datetime):
        super().__init__(id, created_on)
        self.user_id: str | None = None
        self.registered_at: datetime | None = None
        self.attributes: dict[str, Any] = {}
        self.tier: str | None = None
        self.points = 0
        self.erased = False

    def _check_redeem(self, envelope: Envelope) -> None:
        if envelope.data["points"] > self.points:
            raise _conflict(
                "insufficient_points",
                f"cannot redeem {envelope.data['points']} points with a balance of {self.points}",
            )

    def _on_any(self, event: Fact) -> None:
        self.user_id = event.user_id

    def _on_registered(self, event: Fact) -> None:
        self._on_any(event)
        if self.registered_at is None:
            self.registered_at = event.occurred_at
        self.attributes.update(event.data.get("attributes") or {})

    def _on_profile(self, event: Fact) -> None:
        self._on_any(event)
        self.attributes.update(event.data["attributes"])

    def _on_tier(self, event: Fact) -> None:
        self._on_any(event)
        self.tier = event.data["tier"]

    def _on_earned(self, event: Fact) -> None:
        self._on_any(event)
        self.points += event.data["points"]

    def _on_redeemed(self, event: Fact) -> None:
        self._on_any(event)
        self.points -= event.data["points"]

    def _on_erased(self, event: Fact) -> None:
        self.attributes = {key: ERASED for key in self.attributes}
        self.erased = True

    checks = {"PointsRedeemed": _check_redeem}
    appliers = {
        "UserRegistered": _on_registered,
        "UserProfileUpdated": _on_profile,
        "SessionStarted": _on_any,
        "SceneVisited": _on_any,
        "ToolUsed": _on_any,
        "MembershipChanged": _on_tier,
        "PointsEarned": _on_earned,
        "PointsRedeemed": _on_redeemed,
        "SatisfactionRated": _on_any,
        "EventTracked": _on_any,
        "PersonalDataErased": _on_erased,
    }


def _set_status(status: str) -> Callable[[Order, Fact], None]:
    def apply(order: Order, event: Fact) -> None:
        order.status = status

    return apply


class Order(StreamAggregate):
    """placed → paid → shipped → delivered; cancelled only before shipped; refunds only after paid,
    never above the paid amount in total."""

    kind = "order"

    def __init__(self, id: UUID, created_on: datetime):
        super().__init__(id, created_on)
        self.order_id: str | None = None
        self.user_id: str | None = None
        self.status: str | None = None
        self.amount = Decimal(0)
        self.currency: str | None = None
        self.paid = Decimal(0)
        self.refunded = Decimal(0)
        self.coupon_id: str | None = None

    def _check_owner(self, envelope: Envelope) -> None:
        if not self.exists:
            raise _conflict("order_not_placed", f"order {envelope.stream_key!r} was never placed")
        if envelope.user_id != self.user_id:
            raise _conflict("order_user_mismatch", f"order {self.order_id!r} belongs to another user")

    def _check_place(self, envelope: Envelope) -> None:
        if self.exists:
            raise _conflict("order_already_placed", f"order {self.order_id!r} was already placed")

    def _check_pay(self, envelope: Envelope) -> None:
        self._check_owner(envelope)
        self._check_not_cancelled()
        if self.status != "placed":
            raise _conflict("order_already_paid", f"order {self.order_id!r} is already {self.status}")

    def _check_ship(self, envelope: Envelope) -> None:
        self._check_owner(envelope)
        self._check_not_cancelled()
        if self.status != "paid":
            code = "order_not_paid" if self.status == "placed" else "order_already_shipped"
            raise _conflict(code, f"order {self.order_id!r} is {self.status}, not paid")

    def _check_deliver(self, envelope: Envelope) -> None:
        self._check_owner(envelope)
        self._check_not_cancelled()
        if self.status != "shipped":
            code = "order_already_delivered" if self.status == "delivered" else "order_not_shipped"
            raise _conflict(code, f"order {self.order_id!r} is {self.status}, not shipped")

    def _check_cancel(self, envelope: Envelope) -> None:
        self._check_owner(envelope)
        self._check_not_cancelled()
        if self.status not in ("placed", "paid"):
            raise _conflict(
                "order_already_shipped", f"order {self.order_id!r} is {self.status}; too late to cancel"
            )

    def _check_refund(self, envelope: Envelope) -> None:
        self._check_owner(envelope)
        if self.paid == 0 and self.status != "paid":
            raise _conflict("order_not_paid", f"order {self.order_id!r} was never paid")
        if self.refunded + envelope.data["amount"] > self.paid:
            raise _conflict(
                "refund_exceeds_paid",
                f"refunds would total {self.refunded + envelope.data['amount']}, above the {self.paid} paid",
            )

    def _check_not_cancelled(self) -> None:
        if self.status == "cancelled":
            raise _conflict("order_cancelled", f"order {self.order_id!r} was cancelled")

    def _on_placed(self, event: Fact) -> None:
        self.order_id = event.data["order_id"]
        self.user_id = event.user_id
        self.status = "placed"
        self.amount = event.data["amount"]
        self.currency = event.data["currency"]
        self.coupon_id = event.data.get("coupon_id")

    def _on_paid(self, event: Fact) -> None:
        self.status = "paid"
        self.paid = event.data["amount"]

    def _on_refunded(self, event: Fact) -> None:
        self.refunded += event.data["amount"]

    checks = {
        "OrderPlaced": _check_place,
        "OrderPaid": _check_pay,
        "OrderShipped": _check_ship,
        "OrderDelivered": _check_deliver,
        "OrderCancelled": _check_cancel,
        "OrderRefunded": _check_refund,
    }
    appliers = {
        "OrderPlaced": _on_placed,
        "OrderPaid": _on_paid,
        "OrderShipped": _set_status("shipped"),
        "OrderDelivered": _set_status("delivered"),
        "OrderCancelled": _set_status("cancelled"),
        "OrderRefunded": _on_refunded,
    }


class Campaign(StreamAggregate):
    kind = "campaign"

    def __init__(self, id: UUID, created_on: datetime):
        super().__init__(id, created_on)
        self.campaign_id: str | None = None
        self.name: str | None = None
        self.campaign_kind: str | None = None
        self.starts_at: datetime | None = None
        self.ends_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.groups: dict[str, str] = {}

    def _check_create(self, envelope: Envelope) -> None:
        if self.exists:
            raise _conflict("campaign_already_created", f"campaign {self.campaign_id!r} exists")

    def _check_open(self, envelope: Envelope) -> None:
        if not self.exists:
            raise _conflict("campaign_not_found", f"campaign {envelope.stream_key!r} was never created")
        if self.ended_at is not None:
            raise _conflict("campaign_ended", f"campaign {self.campaign_id!r} has ended")

    def _check_enrol(self, envelope: Envelope) -> None:
        """Campaign systems lag: an enrolment that happened before the end is accepted whenever it
        arrives (events.md)."""
        if not self.exists:
            raise _conflict("campaign_not_found", f"campaign {envelope.stream_key!r} was never created")
        if self.ended_at is not None and envelope.occurred_at >= self.ended_at:
            raise _conflict("campaign_ended", f"campaign {self.campaign_id!r} ended at {self.ended_at}")
        if envelope.user_id in self.groups:
            raise _conflict(
                "already_enrolled",
                f"user {envelope.user_id!r} is already in the {self.groups[envelope.user_id]} group",
            )

    def _on_created(self, event: Fact) -> None:
        self.campaign_id = event.data["campaign_id"]
        self.name = event.data["name"]
        self.campaign_kind = event.data["kind"]
        self.starts_at = event.data["starts_at"]
        self.ends_at = event.data.get("ends_at")

    def _on_ended(self, event: Fact) -> None:
        self.ended_at = event.occurred_at

    def _on_enrolled(self, event: Fact) -> None:
        assert event.user_id is not None
        self.groups[event.user_id] = event.data["group"]

    checks = {
        "CampaignCreated": _check_create,
        "CampaignEnded": _check_open,
        "CampaignEnrolled": _check_enrol,
    }
    appliers = {"CampaignCreated": _on_created, "CampaignEnded": _on_ended, "CampaignEnrolled": _on_enrolled}


class Coupon(StreamAggregate):
    kind = "coupon"

    def __init__(self, id: UUID, created_on: datetime):
        super().__init__(id, created_on)
        self.coupon_id: str | None = None
        self.user_id: str | None = None
        self.campaign_id: str | None = None
        self.value = Decimal(0)
        self.redeemed_order_id: str | None = None

    def _check_issue(self, envelope: Envelope) -> None:
        if self.exists:
            raise _conflict("coupon_already_issued", f"coupon {self.coupon_id!r} was already issued")

    def _check_redeem(self, envelope: Envelope) -> None:
        if not self.exists:
            raise _conflict("coupon_not_issued", f"coupon {envelope.stream_key!r} was never issued")
        if envelope.user_id != self.user_id:
            raise _conflict("coupon_user_mismatch", f"coupon {self.coupon_id!r} belongs to another user")
        if self.redeemed_order_id is not None:
            raise _conflict(
                "coupon_already_redeemed",
                f"coupon {self.coupon_id!r} was already redeemed on order {self.redeemed_order_id!r}",
            )

    def _on_issued(self, event: Fact) -> None:
        self.coupon_id = event.data["coupon_id"]
        self.user_id = event.user_id
        self.campaign_id = event.data.get("campaign_id")
        self.value = event.data["value"]

    def _on_redeemed(self, event: Fact) -> None:
        self.redeemed_order_id = event.data["order_id"]

    checks = {"CouponIssued": _check_issue, "CouponRedeemed": _check_redeem}
    appliers = {"CouponIssued": _on_issued, "CouponRedeemed": _on_redeemed}


class Ticket(StreamAggregate):
    kind = "ticket"

    def __init__(self, id: UUID, created_on: datetime):
        super().__init__(id, created_on)
        self.ticket_id: str | None = None
        self.user_id: str | None = None
        self.category: str | None = None
        self.subject: str | None = None
        self.opened_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.replies = 0

    def _check_open(self, envelope: Envelope) -> None:
        if self.exists:
            raise _conflict("ticket_already_opened", f"ticket {self.ticket_id!r} was already opened")

    def _check_exists(self, envelope: Envelope) -> None:
        if not self.exists:
            raise _conflict("ticket_not_found", f"ticket {envelope.stream_key!r} was never opened")
        if envelope.user_id != self.user_id:
            raise _conflict("ticket_user_mismatch", f"ticket {self.ticket_id!r} belongs to another user")

    def _check_resolve(self, envelope: Envelope) -> None:
        self._check_exists(envelope)
        if self.resolved_at is not None:
            raise _conflict("ticket_already_resolved", f"ticket {self.ticket_id!r} was already resolved")

    def _on_opened(self, event: Fact) -> None:
        self.ticket_id = event.data["ticket_id"]
        self.user_id = event.user_id
        self.category = event.data.get("category")
        self.subject = event.data.get("subject")
        self.opened_at = event.occurred_at

    def _on_replied(self, event: Fact) -> None:
        self.replies += 1

    def _on_resolved(self, event: Fact) -> None:
        self.resolved_at = event.occurred_at

    checks = {"TicketOpened": _check_open, "TicketReplied": _check_exists, "TicketResolved": _check_resolve}
    appliers = {"TicketOpened": _on_opened, "TicketReplied": _on_replied, "TicketResolved": _on_resolved}


STREAM_CLASSES: dict[str, type[StreamAggregate]] = {
    cls.kind: cls for cls in (User, Order, Campaign, Coupon, Ticket)
}
