"""Segment messages as catalogue envelopes (api.md "Segment-compatible ingestion"; the README's
mapping table)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.segment.mapping import MappingFileError, SegmentMapping, load_mapping
from api.segment.translate import InvalidMessages, translate
from infra.config import ConfigError, load_settings

RECEIVED = datetime(2026, 12, 1, 10, 7, tzinfo=UTC)


def track(event: str, **properties: object) -> dict:
    return {
        "type": "track",
        "userId": "u1",
        "event": event,
        "properties": properties,
        "messageId": f"m-{event}",
        "timestamp": "2026-12-01T10:00:00Z",
    }


def one(message: dict, **options: object) -> list:
    return translate([message], received_at=RECEIVED, **options).envelopes  # type: ignore[arg-type]


def errors(*messages: object) -> list[tuple[int | None, str]]:
    with pytest.raises(InvalidMessages) as caught:
        translate(list(messages), received_at=RECEIVED)
    return [(d["index"], d["field"]) for d in caught.value.details]


def test_an_order_completed_is_placed_and_paid_for_its_total():
    placed, paid = one(
        track(
            "Order Completed",
            order_id=50314,
            total=27.5,
            revenue=25,
            currency="gbp",
            products=[{"product_id": "p1", "price": 13.75, "quantity": 2}],
        )
    )
    assert (placed.type, paid.type) == ("OrderPlaced", "OrderPaid")
    assert placed.data == {
        "order_id": "50314",
        "amount": Decimal("27.5"),
        "currency": "GBP",
        "items": [{"sku": "p1", "quantity": 2, "unit_price": Decimal("13.75")}],
    }
    assert paid.data == {"order_id": "50314", "amount": Decimal("27.5")}
    assert placed.occurred_at == paid.occurred_at and placed.event_id != paid.event_id


def test_without_a_total_the_amount_is_the_revenue_else_the_products():
    assert one(track("Order Completed", order_id="o", revenue="20.00"))[0].data["amount"] == Decimal("20")
    priced = [{"sku": "a", "price": 1.1, "quantity": 3}, {"sku": "b", "price": "2.25"}, {"name": "no price"}]
    placed = one(track("Order Completed", order_id="o", products=priced))[0]
    assert placed.data["amount"] == Decimal("5.55")
    assert [i["sku"] for i in placed.data["items"]] == ["a", "b"]


def test_a_binary_float_is_the_decimal_it_was_meant_to_be():
    placed = one(track("Order Completed", order_id="o", total=0.1 + 0.2))[0]
    assert placed.data["amount"] == Decimal("0.3")


def test_the_currency_defaults_to_the_mappings():
    assert one(track("Order Completed", order_id="o", total=1))[0].data["currency"] == "USD"
    mapping = SegmentMapping(default_currency="CNY")
    assert one(track("Order Completed", order_id="o", total=1), mapping=mapping)[0].data["currency"] == "CNY"


def test_refunds_cancellations_and_coupons():
    (refund,) = one(track("Order Refunded", order_id="o", total="5"))
    assert (refund.type, refund.data) == ("OrderRefunded", {"order_id": "o", "amount": Decimal("5")})
    (cancel,) = one(track("Order Cancelled", order_id="o", reason="changed mind"))
    assert (cancel.type, cancel.data) == ("OrderCancelled", {"order_id": "o", "reason": "changed mind"})
    (redeemed,) = one(track("Coupon Applied", order_id="o", coupon_id="SPRING"))
    assert (redeemed.type, redeemed.data) == ("CouponRedeemed", {"coupon_id": "SPRING", "order_id": "o"})
    (on_cart,) = one(track("Coupon Applied", cart_id="c", coupon_id="SPRING"))
    assert (on_cart.type, on_cart.data["name"]) == ("EventTracked", "Coupon Applied")


@pytest.mark.parametrize(
    ("event", "scene", "action"),
    [
        ("Product Viewed", "shopping", "view"),
        ("Product List Viewed", "shopping", "view"),
        ("Products Searched", "shopping", "search"),
        ("Cart Viewed", "shopping", "view"),
        ("Product Shared", "social", "share"),
        ("Product Reviewed", "social", "review"),
    ],
)
def test_product_and_cart_events_are_scene_visits(event, scene, action):
    (visit,) = one(track(event, product_id="p1"))
    assert (visit.type, visit.data) == ("SceneVisited", {"scene": scene, "action": action})


def test_sign_ups_identifies_pages_screens_and_other_tracks():
    (signed,) = one(track("Signed Up", plan="free"))
    assert (signed.type, signed.data) == ("UserRegistered", {"attributes": {"plan": "free"}})
    identify = {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}, "messageId": "i"}
    (profile,) = one(identify)
    assert (profile.type, profile.data) == ("UserProfileUpdated", {"attributes": {"email": "a@example.com"}})
    in_context = {"type": "identify", "userId": "u1", "context": {"traits": {"name": "A"}}}
    assert one(in_context)[0].data == {"attributes": {"name": "A"}}
    page = {"type": "page", "userId": "u1", "category": "Docs", "name": "Setup", "properties": {"path": "/s"}}
    assert one(page)[0].data == {"name": "Viewed Docs Setup Page", "properties": {"path": "/s"}}
    assert one({"type": "page", "userId": "u1"})[0].data == {"name": "Loaded a Page"}
    assert one({"type": "screen", "userId": "u1", "name": "Cart"})[0].data == {"name": "Viewed Cart Screen"}
    (played,) = one(track("Video Played", seconds=42))
    assert (played.type, played.data) == (
        "EventTracked",
        {"name": "Video Played", "properties": {"seconds": 42}},
    )


def test_the_mapping_routes_a_shops_own_names_first(tmp_path: Path):
    path = tmp_path / "mapping.toml"
    path.write_text(
        'default_currency = "GBP"\n'
        '[events."Checked In"]\ntype = "ToolUsed"\ntool = "check_in"\n'
        '[events."Live Watched"]\ntype = "SceneVisited"\nscene = "content"\naction = "view"\n'
        '[events."Coupon Applied"]\ntype = "EventTracked"\nname = "Coupon Tried"\n'
    )
    mapping = load_mapping(path)
    assert one(track("Checked In"), mapping=mapping)[0].data == {"tool": "check_in"}
    assert one(track("Live Watched"), mapping=mapping)[0].data == {"scene": "content", "action": "view"}
    assert one(track("Coupon Applied", order_id="o"), mapping=mapping)[0].data["name"] == "Coupon Tried"
    assert load_settings({"COHORTLINE_SEGMENT_MAPPING": str(path)}).segment_mapping == mapping


@pytest.mark.parametrize(
    "text",
    [
        '[events."X"]\ntype = "ToolUsed"\n',
        '[events."X"]\ntype = "SceneVisited"\nscene = "mall"\n',
        "events = [",
    ],
)
def test_a_mapping_file_that_says_nothing_sensible_is_refused(tmp_path: Path, text: str):
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(MappingFileError, match=r"mapping\.toml"):
        load_mapping(path)
    with pytest.raises(ConfigError, match="COHORTLINE_SEGMENT_MAPPING"):
        load_settings({"COHORTLINE_SEGMENT_MAPPING": str(path)})


def test_the_event_time_is_corrected_by_the_senders_clock():
    message = track("Video Played") | {"sentAt": "2026-12-01T10:05:00Z"}
    assert one(message)[0].occurred_at == datetime(2026, 12, 1, 10, 2, tzinfo=UTC)
    batch = {"sentAt": "2026-12-01T10:01:00Z"}
    corrected = translate([track("Video Played")], received_at=RECEIVED, batch=batch).envelopes[0]
    assert corrected.occurred_at == datetime(2026, 12, 1, 10, 6, tzinfo=UTC)
    assert one(track("Video Played"))[0].occurred_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    untimed = {"type": "track", "userId": "u1", "event": "Video Played"}
    assert one(untimed)[0].occurred_at == RECEIVED


def test_a_file_message_is_corrected_by_its_own_received_at():
    exported = track("Video Played") | {
        "sentAt": "2026-12-01T10:00:30Z",
        "receivedAt": "2026-12-01T10:00:10Z",
    }
    (envelope,) = translate([exported], received_at=None).envelopes
    assert envelope.occurred_at == datetime(2026, 12, 1, 9, 59, 40, tzinfo=UTC)
    with pytest.raises(InvalidMessages):
        translate([{"type": "track", "userId": "u1", "event": "x"}], received_at=None)


def test_the_user_and_the_context():
    message = {
        "type": "track",
        "anonymousId": 42,
        "event": "Video Played",
        "context": {
            "channel": "mobile",
            "os": {"name": "iOS"},
            "locale": "zh-CN",
            "campaign": {"name": "spring", "source": "newsletter"},
            "sessionId": 1733,
        },
    }
    batch = {"context": {"channel": "browser", "location": {"country": "United Kingdom"}}}
    (envelope,) = translate([message], received_at=RECEIVED, batch=batch).envelopes
    assert envelope.user_id == "42"
    assert envelope.context == {
        "channel": "app",
        "platform": "iOS",
        "country": "CN",
        "campaign_id": "spring",
        "session_id": "1733",
    }
    assert one(track("x") | {"context": {"location": {"country": "de"}, "os": {"name": "x" * 65}}})[
        0
    ].context == {"country": "DE"}


def test_bad_messages_are_named_by_index_and_field():
    assert errors(track("ok"), {"type": "alias", "userId": "u"}) == [(1, "type")]
    assert errors({"type": "track", "event": "x"}) == [(0, "userId")]
    assert errors({"type": "track", "userId": "u"}) == [(0, "event")]
    assert errors(track("x") | {"timestamp": "yesterday"}) == [(0, "timestamp")]
    skewed = {"timestamp": "9999-12-31T00:00:00Z", "sentAt": "0001-01-01T00:00:00Z"}
    assert errors(track("x") | skewed) == [(0, "sentAt")]
    assert errors(track("x" * 201)) == [(0, "event")]
    assert errors(track("Order Completed", total=1)) == [(0, "properties.order_id")]
    assert errors(track("Order Completed", order_id="o")) == [(0, "properties.total")]
    assert errors(track("Order Completed", order_id="o", total="1.00001")) == [(0, "properties.total")]
    assert errors(track("Order Completed", order_id="o", total=1, currency="pounds")) == [
        (0, "properties.currency")
    ]
    assert errors(track("x") | {"userId": "u" * 129}) == [(0, "userId")]
    unpriced = [{"sku": "a", "price": "cheap"}]
    assert errors(track("Order Completed", order_id="o", products=unpriced)) == [
        (0, "properties.products[0].price")
    ]
    uncounted = [{"sku": "a", "price": 1, "quantity": "2"}]
    assert errors(track("Order Completed", order_id="o", products=uncounted)) == [
        (0, "properties.products[0].quantity")
    ]
    halves = [{"sku": "a", "price": 1, "quantity": 1.5}]
    assert errors(track("Order Completed", order_id="o", products=halves)) == [
        (0, "properties.products[0].quantity")
    ]
    assert errors(track("Order Completed", order_id="o", total={"GBP": 1})) == [(0, "properties.total")]
    assert errors("not a message", track("x") | {"properties": []}) == [(0, ""), (1, "properties")]


@given(ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20, unique=True))
def test_event_ids_come_from_the_message_ids(ids: list[str]):
    messages = [
        track("Order Completed", order_id=f"o{n}", total=1) | {"messageId": m} for n, m in enumerate(ids)
    ]
    first = translate(messages, received_at=RECEIVED)
    again = translate(messages, received_at=datetime.now(UTC))
    assert [e.event_id for e in first.envelopes] == [e.event_id for e in again.envelopes]
    assert len({e.event_id for e in first.envelopes}) == 2 * len(ids)
    assert first.origins == [n for n in range(len(ids)) for _ in range(2)]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = ("order_id", "total", "revenue", "currency", "coupon_id", "reason")


@given(
    event=st.sampled_from(
        ["Order Completed", "Order Refunded", "Order Cancelled", "Coupon Applied", "Signed Up", "x"]
    ),
    properties=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=5),
    products=st.lists(
        st.dictionaries(st.sampled_from(["sku", "product_id", "price", "quantity"]), JSON), max_size=3
    ),
    extra=st.dictionaries(
        st.sampled_from(["userId", "timestamp", "sentAt", "context", "traits", "name"]), JSON
    ),
)
def test_any_json_is_translated_or_refused_by_field(event, properties, products, extra):
    message = track(event, **properties, products=products) | extra
    try:
        translation = translate([message], received_at=RECEIVED)
    except InvalidMessages as invalid:
        assert all(d["index"] == 0 and isinstance(d["field"], str) for d in invalid.details)
    else:
        assert translation.origins == [0] * len(translation.envelopes)
