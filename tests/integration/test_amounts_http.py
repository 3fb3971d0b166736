"""Amounts at `POST /v1/events` on both storages: what the read models cannot hold exactly (money is
kept as 64-bit counts of 1/10,000 unit) is refused with its index and field, and what they can is
projected to the last place."""

from __future__ import annotations

from streams.local import LocalFollower
from streams.log_reader import LogReader
from tests.integration.test_append_http import event, post, stored
from tests.properties import user_documents

READER = {"Authorization": "Bearer read"}
BOUND = "must be less than 1,000,000,000,000 in magnitude"
PLACES = "must have at most 4 decimal places"


def test_amounts_the_read_models_cannot_hold_are_refused_by_index_and_field(client, system):
    response = post(
        client,
        [
            event("OrderPlaced", order_id="o1", amount="10", currency="EUR"),
            event("OrderPaid", order_id="o1", amount="10.00001"),
            event("OrderPlaced", order_id="o2", amount="1000000000000", currency="EUR"),
            event(
                "OrderPlaced",
                order_id="o3",
                amount="1",
                currency="EUR",
                items=[{"sku": "a", "quantity": 1, "unit_price": "0.12345"}],
            ),
            event("CouponIssued", coupon_id="cp1", value=1e13, currency="EUR"),
        ],
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    found = {(d["index"], d["field"]): d["message"] for d in response.json["error"]["details"]}
    assert found == {
        (1, "data.amount"): PLACES,
        (2, "data.amount"): BOUND,
        (3, "data.items[0].unit_price"): PLACES,
        (4, "data.value"): BOUND,
    }
    assert stored(system) == (0, 0)


def test_amounts_to_four_places_up_to_the_bound_are_projected_exactly(client, system):
    largest = "999999999999.9999"
    batch = [
        event("OrderPlaced", order_id="o1", amount="1234.5678", currency="EUR"),
        event("OrderPaid", order_id="o1", amount="1234.5678"),
        event("OrderRefunded", order_id="o1", amount="0.0001"),
    ]
    for n in range(3):
        batch += [
            event("OrderPlaced", "u2", order_id=f"big{n}", amount=largest, currency="EUR"),
            event("OrderPaid", "u2", order_id=f"big{n}", amount=largest),
        ]
    response = post(client, batch)
    assert response.status_code == 201, response.json
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    # kept exactly (the search documents hold every place), shown rounded to 2 places
    with system.engine.connect() as conn:
        documents = user_documents(conn)
    assert documents["u1"]["net_revenue"] == {"EUR": "1234.5677"}
    assert documents["u2"]["net_revenue"] == {"EUR": "2999999999999.9997"}
    assert client.get("/v1/users/u1", headers=READER).json["net_revenue"] == {"EUR": "1234.57"}
    assert client.get("/v1/users/u2", headers=READER).json["net_revenue"] == {"EUR": "3000000000000.00"}
