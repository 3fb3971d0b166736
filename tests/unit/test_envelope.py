import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.catalogue import MONEY_TEXT, TYPES
from domain.envelope import InvalidEnvelope, parse_envelope
from domain.events import EVENT_CLASSES
from tests.unit.factories import raw


def errors_of(event: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEnvelope) as caught:
        parse_envelope(event)
    return [(e.field, e.message) for e in caught.value.errors]


def test_a_valid_order_is_normalised():
    env = parse_envelope(
        {
            "event_id": "8F0A0310-91C5-4CF7-B256-21F4CD71E0A3",
            "type": "OrderPlaced",
            "occurred_at": "2011-01-04T11:00:00+01:00",
            "user_id": "17850",
            "data": {
                "order_id": "536365",
                "amount": "139.12",
                "currency": "GBP",
                "items": [{"sku": "85123A", "quantity": 6, "unit_price": 2.55}],
            },
            "context": {"country": "GB", "channel": "web"},
        }
    )
    assert env.event_id == "8f0a0310-91c5-4cf7-b256-21f4cd71e0a3"
    assert env.occurred_at.isoformat() == "2011-01-04T10:00:00+00:00"
    assert env.data["amount"] == Decimal("139.12")
    assert env.data["items"][0]["unit_price"] == Decimal("2.55")
    assert env.stream_key == "536365"


def test_every_problem_of_an_event_is_reported():
    found = errors_of(
        {
            "type": "OrderPlaced",
            "occurred_at": "yesterday",
            "data": {"amount": "-1", "currency": "pounds", "extra": 1},
            "surprise": True,
        }
    )
    assert ("surprise", "unknown field") in found
    fields = {f for f, _ in found}
    assert {"occurred_at", "user_id", "data.order_id", "data.amount", "data.currency", "data.extra"} <= fields


def test_unknown_type_and_sender_only_types_are_refused():
    assert errors_of(raw("OrderTeleported"))[0][0] == "type"
    assert errors_of(raw("PersonalDataErased"))[0][0] == "type"


def test_campaign_facts_take_no_user():
    event = raw(
        "CampaignCreated",
        user_id="u1",
        campaign_id="c1",
        name="Spring",
        kind="activity",
        starts_at="2011-03-01T00:00:00Z",
    )
    assert ("user_id", "CampaignCreated takes no user_id") in errors_of(event)
    del event["user_id"]
    assert parse_envelope(event).user_id is None


@pytest.mark.parametrize(
    ("type_", "data", "field"),
    [
        ("SatisfactionRated", {"score": 6}, "data.score"),
        ("SatisfactionRated", {"score": True}, "data.score"),
        ("PointsEarned", {"points": 0}, "data.points"),
        ("OrderRefunded", {"order_id": "o", "amount": "0"}, "data.amount"),
        ("OrderPaid", {"order_id": "o", "amount": "NaN"}, "data.amount"),
        ("OrderPaid", {"order_id": "o", "amount": 1e400}, "data.amount"),
        ("SceneVisited", {"scene": "casino"}, "data.scene"),
        ("SceneVisited", {"scene": "social", "duration_ms": -1}, "data.duration_ms"),
        (
            "OrderPlaced",
            {
                "order_id": "o",
                "amount": "1",
                "currency": "GBP",
                "items": [{"sku": "a", "quantity": 0, "unit_price": 1}],
            },
            "data.items[0].quantity",
        ),
    ],
)
def test_out_of_range_values_name_their_field(type_, data, field):
    assert field in {f for f, _ in errors_of(raw(type_, **data))}


def test_bad_context_and_user_id():
    event = raw("SessionStarted", user_id="")
    event["context"] = {"country": "United Kingdom", "mood": "happy"}
    fields = {f for f, _ in errors_of(event)}
    assert fields == {"user_id", "context.country", "context.mood"}


def test_timestamps_need_an_offset():
    assert errors_of(raw("SessionStarted", at="2011-01-04T10:00:00"))[0][0] == "occurred_at"


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_timestamp_outside_the_calendar_in_utc_is_refused(at):
    assert errors_of(raw("SessionStarted", at=at))[0][0] == "occurred_at"


def test_the_catalogue_names_every_type_of_events_md():
    assert set(TYPES) == set(EVENT_CLASSES) and len(TYPES) == 25
    assert TYPES["TicketOpened"].personal_fields == ("subject",)


def test_a_tracked_event_has_a_name_and_personal_properties():
    env = parse_envelope(raw("EventTracked", name="Video Played", properties={"title": "Spring sale"}))
    assert env.data == {"name": "Video Played", "properties": {"title": "Spring sale"}}
    assert TYPES["EventTracked"].activity and TYPES["EventTracked"].personal_fields == ("properties",)
    assert errors_of(raw("EventTracked")) == [("data.name", "required")]
    assert errors_of(raw("EventTracked", name="x" * 201)) == [
        ("data.name", "must be a string of 1 to 200 characters")
    ]
    assert errors_of(raw("EventTracked", name="Played", properties=[1])) == [
        ("data.properties", "must be an object")
    ]


def _order(amount: object, unit_price: object = "1") -> dict:
    items = [{"sku": "a", "quantity": 1, "unit_price": unit_price}]
    return raw("OrderPlaced", order_id="o", amount=amount, currency="GBP", items=items)


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (_order("1.00001"), "data.amount", "must have at most 4 decimal places"),
        (_order(0.12345), "data.amount", "must have at most 4 decimal places"),
        (_order("1", unit_price="0.00001"), "data.items[0].unit_price", "must have at most 4 decimal places"),
        (_order("1000000000000"), "data.amount", "must be less than 1,000,000,000,000 in magnitude"),
        (_order(1e12), "data.amount", "must be less than 1,000,000,000,000 in magnitude"),
        (_order("1E+11"), "data.amount", "must be a plain decimal string"),
        (_order(" 12"), "data.amount", "must be a plain decimal string"),
        (_order("1", unit_price="9" * 13), "data.items[0].unit_price", "must be less than 1,000,000,000,000"),
        (
            raw("OrderPaid", order_id="o", amount="999999999999.99999"),
            "data.amount",
            "must have at most 4 decimal places",
        ),
        (raw("OrderRefunded", order_id="o", amount="0.00005"), "data.amount", "at most 4 decimal places"),
        (
            raw("CouponIssued", coupon_id="c", value=10**12, currency="EUR"),
            "data.value",
            "less than 1,000,000,000,000",
        ),
    ],
)
def test_amounts_the_read_models_cannot_hold_are_refused(event, field, message):
    found = errors_of(event)
    assert [f for f, _ in found] == [field]
    assert message in found[0][1]


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("999999999999.9999", Decimal("999999999999.9999")),
        ("0.0001", Decimal("0.0001")),
        ("12.34560000", Decimal("12.3456")),
        (12.3456, Decimal("12.3456")),
        (1e11, Decimal("100000000000.0")),
    ],
)
def test_amounts_to_four_places_below_the_bound_are_accepted(amount, expected):
    env = parse_envelope(_order(amount, unit_price=amount))
    assert env.data["amount"] == expected and env.data["items"][0]["unit_price"] == expected


def test_an_integer_written_with_a_zero_fraction_is_an_integer():
    envelope = parse_envelope(raw("PointsEarned", points=340935.0))
    assert envelope.data["points"] == 340935 and type(envelope.data["points"]) is int
    assert errors_of(raw("PointsEarned", points=1.5)) == [("data.points", "must be an integer")]


@given(st.text(alphabet="0123456789.", min_size=1, max_size=22) | st.from_regex(MONEY_TEXT, fullmatch=True))
def test_the_documented_amount_pattern_accepts_exactly_the_strings_the_api_accepts(text):
    """OpenAPI's pattern for a string amount (domain.catalogue.MONEY_TEXT) says what validation does."""
    documented = re.fullmatch(MONEY_TEXT, text) is not None
    try:
        parse_envelope(raw("OrderPaid", order_id="o", amount=text))
        accepted = True
    except InvalidEnvelope:
        accepted = False
    assert accepted == documented, text


def test_text_no_database_can_hold_is_refused():
    assert errors_of(raw("SessionStarted", user_id="u\x00", platform="web")) == [
        ("user_id", "must not contain NUL characters (no database text holds them)")
    ]
    assert [f for f, _ in errors_of(raw("SessionStarted", platform="w\x00b"))] == ["data.platform"]
