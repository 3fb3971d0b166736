"""Segment messages as catalogue envelopes (the README's "Segment mapping" table).

Segment's e-commerce spec maps onto the catalogue's types; a shop's own names are routed by its
mapping file; every other track, page and screen becomes an `EventTracked`. Each event id is derived
from the message's `messageId`, so the same message translated again gives the same ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import ValidationError

from api.segment.mapping import DEFAULT_MAPPING, Route, SegmentMapping
from api.segment.messages import Message, MessageError, catalogue_context, event_time, user_of
from domain.catalogue import MONEY_PLACES
from domain.envelope import Envelope, InvalidEnvelope, format_timestamp, parse_envelope, to_decimal

NAMESPACE = uuid.UUID("5e6b0f1e-2f4c-4b7a-9c55-c0a1e7f1ab14")
MONEY_STEP = Decimal(1).scaleb(-MONEY_PLACES)


@dataclass(frozen=True)
class Draft:
    """One catalogue event a message makes: its type, data, and the message's field each data field
    came from (for errors)."""

    type: str
    data: dict[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Translation:
    envelopes: list[Envelope]
    origins: list[int]
    """For each envelope, the index of the message it came from."""


class InvalidMessages(Exception):
    def __init__(self, details: list[dict[str, Any]]):
        super().__init__("; ".join(f"[{d['index']}] {d['field']}: {d['message']}" for d in details))
        self.details = details


def translate(
    messages: Sequence[object],
    *,
    received_at: datetime | None,
    mapping: SegmentMapping = DEFAULT_MAPPING,
    batch: Mapping[str, Any] | None = None,
) -> Translation:
    """Every message's envelopes, or InvalidMessages naming each bad message by index and field.

    `batch` is the body of a /v1/batch call: its `context` merges into each message's (the message's
    own keys win) and its `sentAt` stands for a message's own."""
    batch = batch or {}
    batch_context = batch.get("context") if isinstance(batch.get("context"), dict) else {}
    batch_sent_at = batch.get("sentAt") if isinstance(batch.get("sentAt"), str) else None
    envelopes: list[Envelope] = []
    origins: list[int] = []
    details: list[dict[str, Any]] = []
    for index, raw in enumerate(messages):
        try:
            made = _envelopes(raw, received_at, mapping, batch_context, batch_sent_at)
        except MessageError as e:
            details.append({"index": index, "field": e.field, "message": e.message})
        except _Invalid as e:
            details += [{"index": index, **detail} for detail in e.details]
        else:
            envelopes += made
            origins += [index] * len(made)
    if details:
        raise InvalidMessages(details)
    return Translation(envelopes, origins)


class _Invalid(Exception):
    def __init__(self, details: list[dict[str, str]]):
        self.details = details


def _envelopes(
    raw: object,
    received_at: datetime | None,
    mapping: SegmentMapping,
    batch_context: Mapping[str, Any],
    batch_sent_at: str | None,
) -> list[Envelope]:
    message = _message(raw)
    user_id = user_of(message)
    occurred_at = format_timestamp(event_time(message, batch_sent_at, received_at))
    context = catalogue_context({**batch_context, **message.context})
    drafts = _drafts(message, mapping)
    envelopes, problems = [], []
    for draft in drafts:
        raw_envelope = {
            "event_id": _event_id(message, draft, len(drafts)),
            "type": draft.type,
            "occurred_at": occurred_at,
            "user_id": user_id,
            "data": draft.data,
            "context": context,
        }
        try:
            envelopes.append(parse_envelope(raw_envelope))
        except InvalidEnvelope as invalid:
            reported = {p["field"] for p in problems}
            problems += [
                {"field": _source(e.field, draft), "message": f"{e.message} (as {draft.type} {e.field})"}
                for e in invalid.errors
                if _source(e.field, draft) not in reported
            ]
    if problems:
        raise _Invalid(problems)
    return envelopes


def _message(raw: object) -> Message:
    if not isinstance(raw, dict):
        raise MessageError("", "a message must be a JSON object")
    try:
        return Message.model_validate(raw)
    except ValidationError as e:
        raise _Invalid(
            [
                {"field": ".".join(str(part) for part in error["loc"]), "message": _said(error)}
                for error in e.errors(include_url=False)
            ]
        ) from None


def _said(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "required"
    if error["type"] == "literal_error":
        return "must be one of track, identify, page, screen"
    return str(error["msg"])


def _event_id(message: Message, draft: Draft, drafts: int) -> str:
    """uuid5 of the messageId (and of the type, when the message makes more than one event); a
    message without a messageId gets a random id, as Segment gives it one."""
    if message.messageId is None or str(message.messageId) == "":
        return str(uuid.uuid4())
    key = str(message.messageId) if drafts == 1 else f"{message.messageId}#{draft.type}"
    return str(uuid.uuid5(NAMESPACE, key))


def _source(envelope_field: str, draft: Draft) -> str:
    """The message's field an envelope's field came from."""
    if envelope_field == "user_id":
        return "userId"
    if envelope_field == "occurred_at":
        return "timestamp"
    name = envelope_field.removeprefix("data.")
    head = name.split("[")[0].split(".")[0]
    if head in draft.sources:
        return draft.sources[head] + name[len(head) :]
    return envelope_field


def _drafts(message: Message, mapping: SegmentMapping) -> list[Draft]:
    if message.type == "identify":
        traits = message.traits or _dict(message.context.get("traits"))
        return [Draft("UserProfileUpdated", {"attributes": traits}, {"attributes": "traits"})]
    if message.type in ("page", "screen"):
        return [_tracked(_viewed(message), message.properties, "name")]
    if message.event is None or message.event == "":
        raise MessageError("event", "required: the name of what the user did")
    route = mapping.events.get(message.event)
    if route is not None:
        return [_routed(route, message)]
    translate_spec = ECOMMERCE.get(message.event)
    if translate_spec is not None:
        return translate_spec(message.properties, mapping)
    return [_tracked(message.event, message.properties, "event")]


def _viewed(message: Message) -> str:
    """Segment's own convention for page and screen calls: `Viewed {category} {name} Page`, or
    `Loaded a Page` when the call names nothing."""
    noun = "Page" if message.type == "page" else "Screen"
    words = " ".join(part for part in (message.category, message.name) if part)
    return f"Viewed {words} {noun}" if words else f"Loaded a {noun}"


def _tracked(name: str, properties: dict[str, Any], source: str) -> Draft:
    data: dict[str, Any] = {"name": name}
    if properties:
        data["properties"] = properties
    return Draft("EventTracked", data, {"name": source, "properties": "properties"})


def _routed(route: Route, message: Message) -> Draft:
    if route.type == "EventTracked":
        return _tracked(route.name or str(message.event), message.properties, "event")
    data = {k: v for k, v in (("tool", route.tool), ("scene", route.scene), ("action", route.action)) if v}
    return Draft(route.type, data)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# The e-commerce spec (Segment's "E-commerce Events v2")


def _order_id(properties: Mapping[str, Any]) -> str:
    value = properties.get("order_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise MessageError("properties.order_id", "required: the order's id (a string or a number)")
    return str(value)


def _money(value: Any, field: str) -> Any:
    """A JSON number as the decimal it was meant to be: rounded to the money's places, as a binary
    float cannot hold 19.99 exactly (a client's 0.1 + 0.2 arrives as 0.30000000000000004). Strings
    are taken as written."""
    if isinstance(value, float):
        number = to_decimal(value)
        if number is None:
            raise MessageError(field, "must be a finite number")
        return str(number.quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN))
    return value


def _amount(properties: Mapping[str, Any], what: str) -> tuple[Any, str]:
    """The amount of an order or refund and the property it came from: `total` (what was charged,
    shipping, tax and discounts included — what a refund is measured against), else `revenue`, else
    the products' price times quantity."""
    for name in ("total", "revenue"):
        if properties.get(name) is not None:
            return _money(properties[name], f"properties.{name}"), f"properties.{name}"
    products = _products(properties)
    if products:
        total = sum((_line_total(index, p) for index, p in enumerate(products)), Decimal(0))
        return str(total.quantize(MONEY_STEP)), "properties.products"
    raise MessageError("properties.total", f"required: the {what} (or revenue, or products with prices)")


def _line_total(index: int, item: Mapping[str, Any]) -> Decimal:
    price, quantity = to_decimal(item["unit_price"]), item["quantity"]
    if price is None:
        raise MessageError(f"properties.products[{index}].price", "must be a decimal number")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise MessageError(f"properties.products[{index}].quantity", "must be an integer")
    return price * quantity


def _products(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The products with an id and a price, as the catalogue's order items (quantity 1 unless given)."""
    products = properties.get("products")
    if not isinstance(products, list):
        return []
    items = []
    for index, product in enumerate(products):
        if not isinstance(product, dict):
            continue
        sku = product.get("sku") if product.get("sku") not in (None, "") else product.get("product_id")
        price = product.get("price")
        if sku in (None, "") or price is None or isinstance(sku, bool) or isinstance(price, bool):
            continue
        path = f"properties.products[{index}].price"
        quantity = product.get("quantity", 1)
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)
        items.append({"sku": str(sku), "quantity": quantity, "unit_price": _money(price, path)})
    return items


def order_completed(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
    """`OrderPlaced` and `OrderPaid` of the same amount at the same instant."""
    order_id = _order_id(properties)
    amount, source = _amount(properties, "order's total")
    placed: dict[str, Any] = {
        "order_id": order_id,
        "amount": amount,
        "currency": _currency(properties.get("currency")) or mapping.default_currency,
    }
    items = _products(properties)
    if items:
        placed["items"] = items
    sources = {"order_id": "properties.order_id", "amount": source, "currency": "properties.currency"}
    sources["items"] = "properties.products"
    paid = {"order_id": order_id, "amount": amount}
    return [Draft("OrderPlaced", placed, sources), Draft("OrderPaid", paid, sources)]


def _currency(value: Any) -> Any:
    """Segment's examples write currencies in either case (`usd`); ISO 4217 codes are upper case."""
    return value.upper() if isinstance(value, str) else value


def order_refunded(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
    amount, source = _amount(properties, "amount refunded")
    data = {"order_id": _order_id(properties), "amount": amount}
    return [Draft("OrderRefunded", data, {"order_id": "properties.order_id", "amount": source})]


def order_cancelled(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
    data = {"order_id": _order_id(properties)}
    if properties.get("reason") is not None:
        data["reason"] = properties["reason"]
    return [Draft("OrderCancelled", data, {"order_id": "properties.order_id", "reason": "properties.reason"})]


def coupon_applied(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
    """A coupon applied to an order redeems it; applied to a cart only, it is a tracked event."""
    if properties.get("order_id") in (None, ""):
        return [_tracked("Coupon Applied", dict(properties), "event")]
    coupon = properties.get("coupon_id")
    data = {
        "coupon_id": str(coupon) if isinstance(coupon, int) else coupon,
        "order_id": _order_id(properties),
    }
    return [
        Draft(
            "CouponRedeemed", data, {"coupon_id": "properties.coupon_id", "order_id": "properties.order_id"}
        )
    ]


def signed_up(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
    data: dict[str, Any] = {"attributes": dict(properties)} if properties else {}
    return [Draft("UserRegistered", data, {"attributes": "properties"})]


def scene(name: str, action: str) -> Callable[[Mapping[str, Any], SegmentMapping], list[Draft]]:
    def visit(properties: Mapping[str, Any], mapping: SegmentMapping) -> list[Draft]:
        return [Draft("SceneVisited", {"scene": name, "action": action})]

    return visit


ECOMMERCE: dict[str, Callable[[Mapping[str, Any], SegmentMapping], list[Draft]]] = {
    "Order Completed": order_completed,
    "Order Refunded": order_refunded,
    "Order Cancelled": order_cancelled,
    "Coupon Applied": coupon_applied,
    "Signed Up": signed_up,
    "Product Viewed": scene("shopping", "view"),
    "Product List Viewed": scene("shopping", "view"),
    "Product Clicked": scene("shopping", "view"),
    "Products Searched": scene("shopping", "search"),
    "Cart Viewed": scene("shopping", "view"),
    "Product Shared": scene("social", "share"),
    "Cart Shared": scene("social", "share"),
    "Product Reviewed": scene("social", "review"),
}
"""Segment's e-commerce event names → the catalogue events they make."""
