from datetime import UTC, datetime
from decimal import Decimal

from domain.events import OrderPlaced
from domain.model import stream_id
from projections.records import EventRecord


def test_a_fact_survives_the_kafka_wire_form():
    at = datetime(2011, 1, 4, 10, tzinfo=UTC)
    fact = OrderPlaced(
        originator_id=stream_id("order", "o1"),
        originator_version=1,
        timestamp=at,
        event_id="e1",
        occurred_at=at,
        user_id="u1",
        context={"country": "GB"},
        data={
            "order_id": "o1",
            "amount": Decimal("10.10"),
            "currency": "GBP",
            "items": [{"sku": "a", "quantity": 2, "unit_price": Decimal("5.05")}],
        },
    )
    record = EventRecord.from_fact(fact, position=42)
    assert record.type == "OrderPlaced" and record.schema_version == 1 and record.is_activity
    back = EventRecord.from_json(record.to_json())
    assert back == record
    assert back.data["items"][0]["unit_price"] == Decimal("5.05")
