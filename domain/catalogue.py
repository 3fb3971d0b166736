"""The event catalogue (events.md) as data: each type's stream, fields, and whether it is activity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldKind = Literal["string", "currency", "country", "decimal", "int", "timestamp", "object", "items", "enum"]

MONEY_PLACES = 4
MONEY_SCALE = 10**MONEY_PLACES
"""Money is exact to 1/10,000 of the currency unit: read models keep it as an integer count of those
(exact sums on both PostgreSQL and SQLite, whose NUMERIC is a float)."""
MAX_AMOUNT = 10**12
MONEY_TEXT = rf"0*\d{{1,{len(str(MAX_AMOUNT)) - 1}}}(\.\d{{1,{MONEY_PLACES}}}0*)?"
"""The amounts that may be written as strings: plain decimals below MAX_AMOUNT with at most
MONEY_PLACES decimals (leading and trailing zeros aside), so the syntax says what the value rules say."""
"""Amounts are below this in magnitude, so a signed 64-bit count of 1/10,000 units holds the sum of
over 900 amounts at the bound (2^63 / 10^16), and of any realistic history."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    exclusive_minimum: bool = False
    max_length: int = 512
    personal: bool = False
    max_places: int | None = None
    """Decimals: at most this many digits after the point."""
    magnitude_below: int | None = None
    """Decimals: the absolute value is below this."""


@dataclass(frozen=True)
class TypeSpec:
    name: str
    stream: Literal["user", "order", "campaign", "coupon", "ticket"]
    stream_key: str | None
    fields: tuple[FieldSpec, ...]
    activity: bool = False
    needs_user: bool = True
    accepted_from_senders: bool = True
    field_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_names", frozenset(f.name for f in self.fields))

    @property
    def personal_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.personal)


def _s(name: str, required: bool = False, personal: bool = False, max_length: int = 512) -> FieldSpec:
    return FieldSpec(name, "string", required, personal=personal, max_length=max_length)


def money_field(name: str, positive: bool = False) -> FieldSpec:
    """A required amount of money, no less than zero (above it when `positive`), that the read models
    hold exactly."""
    return FieldSpec(
        name,
        "decimal",
        True,
        minimum=0,
        exclusive_minimum=positive,
        max_places=MONEY_PLACES,
        magnitude_below=MAX_AMOUNT,
    )


def _int(name: str, minimum: int, maximum: int | None = None, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "int", required, minimum=minimum, maximum=maximum)


def _enum(name: str, *choices: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "enum", required, choices=choices)


def _currency() -> FieldSpec:
    return FieldSpec("currency", "currency", True, max_length=3)


SCENES = ("shopping", "social", "content")
EVENT_NAME_LENGTH = 200
CAMPAIGN_KINDS = ("activity", "benefit", "incentive")
GROUPS = ("treatment", "control")

TYPES: dict[str, TypeSpec] = {
    spec.name: spec
    for spec in (
        TypeSpec(
            "UserRegistered",
            "user",
            None,
            (_s("channel"), _s("referrer"), FieldSpec("attributes", "object", personal=True)),
            activity=True,
        ),
        TypeSpec(
            "UserProfileUpdated",
            "user",
            None,
            (FieldSpec("attributes", "object", True, personal=True),),
        ),
        TypeSpec("SessionStarted", "user", None, (_s("session_id"), _s("platform")), activity=True),
        TypeSpec(
            "SceneVisited",
            "user",
            None,
            (
                _enum("scene", *SCENES),
                _s("page"),
                _s("action"),
                _int("duration_ms", 0, required=False),
            ),
            activity=True,
        ),
        TypeSpec("ToolUsed", "user", None, (_s("tool", True, max_length=64), _s("action")), activity=True),
        TypeSpec("MembershipChanged", "user", None, (_s("tier", True, max_length=64),)),
        TypeSpec("PointsEarned", "user", None, (_int("points", 1), _s("reason"))),
        TypeSpec("PointsRedeemed", "user", None, (_int("points", 1), _s("order_id")), activity=True),
        TypeSpec(
            "OrderPlaced",
            "order",
            "order_id",
            (
                _s("order_id", True, max_length=128),
                money_field("amount"),
                _currency(),
                FieldSpec("items", "items"),
                _s("coupon_id", max_length=128),
            ),
            activity=True,
        ),
        TypeSpec(
            "OrderPaid",
            "order",
            "order_id",
            (_s("order_id", True, max_length=128), money_field("amount"), _s("method")),
            activity=True,
        ),
        TypeSpec("OrderShipped", "order", "order_id", (_s("order_id", True, max_length=128),)),
        TypeSpec("OrderDelivered", "order", "order_id", (_s("order_id", True, max_length=128),)),
        TypeSpec("OrderCancelled", "order", "order_id", (_s("order_id", True, max_length=128), _s("reason"))),
        TypeSpec(
            "OrderRefunded",
            "order",
            "order_id",
            (_s("order_id", True, max_length=128), money_field("amount", positive=True), _s("reason")),
        ),
        TypeSpec(
            "CampaignCreated",
            "campaign",
            "campaign_id",
            (
                _s("campaign_id", True, max_length=128),
                _s("name", True),
                _enum("kind", *CAMPAIGN_KINDS),
                FieldSpec("starts_at", "timestamp", True),
                FieldSpec("ends_at", "timestamp"),
            ),
            needs_user=False,
        ),
        TypeSpec(
            "CampaignEnded",
            "campaign",
            "campaign_id",
            (_s("campaign_id", True, max_length=128),),
            needs_user=False,
        ),
        TypeSpec(
            "CampaignEnrolled",
            "campaign",
            "campaign_id",
            (_s("campaign_id", True, max_length=128), _enum("group", *GROUPS)),
        ),
        TypeSpec(
            "CouponIssued",
            "coupon",
            "coupon_id",
            (
                _s("coupon_id", True, max_length=128),
                _s("campaign_id", max_length=128),
                money_field("value", positive=True),
                _currency(),
            ),
        ),
        TypeSpec(
            "CouponRedeemed",
            "coupon",
            "coupon_id",
            (_s("coupon_id", True, max_length=128), _s("order_id", True, max_length=128)),
            activity=True,
        ),
        TypeSpec(
            "TicketOpened",
            "ticket",
            "ticket_id",
            (
                _s("ticket_id", True, max_length=128),
                _s("category"),
                _s("channel"),
                _s("subject", personal=True, max_length=2000),
            ),
            activity=True,
        ),
        TypeSpec(
            "TicketReplied",
            "ticket",
            "ticket_id",
            (_s("ticket_id", True, max_length=128), _enum("by", "agent", "customer")),
        ),
        TypeSpec(
            "TicketResolved", "ticket", "ticket_id", (_s("ticket_id", True, max_length=128), _s("resolution"))
        ),
        TypeSpec(
            "SatisfactionRated",
            "user",
            None,
            (
                _int("score", 1, 5),
                _s("ticket_id", max_length=128),
                _s("order_id", max_length=128),
                _s("comment", personal=True, max_length=4000),
            ),
            activity=True,
        ),
        TypeSpec(
            "EventTracked",
            "user",
            None,
            (
                _s("name", True, max_length=EVENT_NAME_LENGTH),
                FieldSpec("properties", "object", personal=True),
            ),
            activity=True,
        ),
        TypeSpec("PersonalDataErased", "user", None, (), accepted_from_senders=False),
    )
}

CONTEXT_FIELDS: tuple[FieldSpec, ...] = (
    _s("channel", max_length=64),
    _s("platform", max_length=64),
    FieldSpec("country", "country", max_length=2),
    _s("campaign_id", max_length=128),
    _s("session_id", max_length=128),
)


def is_activity(type_name: str, data: dict[str, object]) -> bool:
    """Whether an event of this type and data is user-initiated (metrics.md "Activity")."""
    if type_name == "TicketReplied":
        return data.get("by") == "customer"
    spec = TYPES.get(type_name)
    return bool(spec and spec.activity)


FEATURE_SOURCES = {"SceneVisited": ("scene", "scene"), "ToolUsed": ("tool", "tool")}
"""Event type → (feature prefix, the data field naming it) (metrics.md "Scenes and tools")."""


def feature_of(type_name: str, data: dict[str, object]) -> str | None:
    """The scene or tool an event is a use of, as `scene:shopping` or `tool:check_in`; None for
    other events."""
    source = FEATURE_SOURCES.get(type_name)
    if source is None:
        return None
    prefix, field = source
    return f"{prefix}:{data[field]}"


def tracked_event_of(type_name: str, data: dict[str, object]) -> str | None:
    """The custom event an event is, as `event:Video Played` (events.md "Custom events"); None for
    the catalogue's own types."""
    return f"event:{data['name']}" if type_name == "EventTracked" else None


SYSTEM_TYPES = frozenset(name for name, spec in TYPES.items() if not spec.accepted_from_senders)
"""Recorded by Cohortline itself (an erasure), not facts about what users did."""
