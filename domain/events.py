"""Domain events: one class per catalogue type, each carrying the sender's envelope.

Every event is a frozen dataclass (eventsourcing's DomainEvent) with the stream's id and version,
`timestamp` (when it was recorded), and the envelope: `event_id`, `occurred_at`, `user_id`,
`context` and `data`. Its catalogue type is the class name; its schema version is `class_version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEvent, OriginatorVersionError


class Stream(Protocol):
    id: UUID
    version: int
    modified_on: datetime

    def when(self, event: Fact) -> None: ...


_blank_streams: dict[str, type] = {}


def register_stream(kind: str, cls: type) -> None:
    """Name the aggregate class that a stream of `kind` starts from (see `Fact.mutate`)."""
    _blank_streams[kind] = cls


class Fact(DomainEvent):
    event_id: str
    occurred_at: datetime
    user_id: str | None
    context: dict[str, Any]
    data: dict[str, Any]

    stream_kind: ClassVar[str] = "user"

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    @classmethod
    def schema_version(cls) -> int:
        return int(getattr(cls, "class_version", 1))

    def mutate(self, aggregate: Any) -> Any:
        """Evolve the stream's aggregate; any type may start a stream (a user exists from their
        first event), so an absent aggregate is created blank first."""
        if aggregate is None:
            aggregate = _blank_streams[self.stream_kind](self.originator_id, self.timestamp)
        if self.originator_version != aggregate.version + 1:
            raise OriginatorVersionError(self.originator_version, aggregate.version + 1)
        aggregate.when(self)
        aggregate.version = self.originator_version
        aggregate.modified_on = self.timestamp
        return aggregate


class UserFact(Fact):
    stream_kind: ClassVar[str] = "user"


class OrderFact(Fact):
    stream_kind: ClassVar[str] = "order"


class CampaignFact(Fact):
    stream_kind: ClassVar[str] = "campaign"


class CouponFact(Fact):
    stream_kind: ClassVar[str] = "coupon"


class TicketFact(Fact):
    stream_kind: ClassVar[str] = "ticket"


class UserRegistered(UserFact):
    pass


class UserProfileUpdated(UserFact):
    pass


class SessionStarted(UserFact):
    pass


class SceneVisited(UserFact):
    pass


class ToolUsed(UserFact):
    pass


class MembershipChanged(UserFact):
    pass


class PointsEarned(UserFact):
    pass


class PointsRedeemed(UserFact):
    pass


class EventTracked(UserFact):
    pass


class SatisfactionRated(UserFact):
    pass


class PersonalDataErased(UserFact):
    pass


class OrderPlaced(OrderFact):
    pass


class OrderPaid(OrderFact):
    pass


class OrderShipped(OrderFact):
    pass


class OrderDelivered(OrderFact):
    pass


class OrderCancelled(OrderFact):
    pass


class OrderRefunded(OrderFact):
    pass


class CampaignCreated(CampaignFact):
    pass


class CampaignEnded(CampaignFact):
    pass


class CampaignEnrolled(CampaignFact):
    pass


class CouponIssued(CouponFact):
    pass


class CouponRedeemed(CouponFact):
    pass


class TicketOpened(TicketFact):
    pass


class TicketReplied(TicketFact):
    pass


class TicketResolved(TicketFact):
    pass


EVENT_CLASSES: dict[str, type[Fact]] = {
    cls.__name__: cls
    for cls in (
        UserRegistered,
        UserProfileUpdated,
        SessionStarted,
        SceneVisited,
        ToolUsed,
        MembershipChanged,
        PointsEarned,
        PointsRedeemed,
        SatisfactionRated,
        EventTracked,
        PersonalDataErased,
        OrderPlaced,
        OrderPaid,
        OrderShipped,
        OrderDelivered,
        OrderCancelled,
        OrderRefunded,
        CampaignCreated,
        CampaignEnded,
        CampaignEnrolled,
        CouponIssued,
        CouponRedeemed,
        TicketOpened,
        TicketReplied,
        TicketResolved,
    )
}
