"""POST /v1/events on both storages: every catalogue type, idempotency, and every error class —
each rejected request proven to have written nothing."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from domain.catalogue import TYPES

PRODUCER = {"Authorization": "Bearer prod"}


def event(type_: str, user_id: str | None = "u1", at: str = "2011-01-04T10:00:00Z", **data) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": at,
        "data": data,
        "context": {"country": "GB", "channel": "app"},
    }
    if user_id is not None:
        body["user_id"] = user_id
    return body


def every_type() -> list[dict]:
    """One valid history that uses every type a sender may append."""
    return [
        event(
            "CampaignCreated",
            None,
            campaign_id="c1",
            name="Spring",
            kind="incentive",
            starts_at="2011-01-01T00:00:00Z",
            ends_at="2011-02-01T00:00:00Z",
        ),
        event("UserRegistered", channel="app", referrer="friend", attributes={"name": "Ada"}),
        event("UserProfileUpdated", attributes={"city": "Leeds"}),
        event("SessionStarted", session_id="s1", platform="ios"),
        event("SceneVisited", scene="social", page="feed", action="like", duration_ms=1200),
        event("ToolUsed", tool="check_in"),
        event("MembershipChanged", tier="gold"),
        event("PointsEarned", points=100, reason="check-in streak"),
        event("PointsRedeemed", points=40),
        event("CampaignEnrolled", campaign_id="c1", group="treatment"),
        event("CouponIssued", coupon_id="cp1", campaign_id="c1", value="5.00", currency="EUR"),
        event(
            "OrderPlaced",
            order_id="o1",
            amount="30.00",
            currency="EUR",
            coupon_id="cp1",
            items=[{"sku": "85123A", "quantity": 2, "unit_price": "15.00"}],
        ),
        event("CouponRedeemed", coupon_id="cp1", order_id="o1"),
        event("OrderPaid", order_id="o1", amount="25.00", method="card"),
        event("OrderShipped", order_id="o1"),
        event("OrderDelivered", order_id="o1"),
        event("OrderRefunded", order_id="o1", amount="5.00", reason="damaged"),
        event("OrderPlaced", order_id="o2", amount="12", currency="EUR"),
        event("OrderCancelled", order_id="o2", reason="changed mind"),
        event("TicketOpened", ticket_id="t1", category="delivery", channel="chat", subject="late parcel"),
        event("TicketReplied", ticket_id="t1", by="customer"),
        event("TicketResolved", ticket_id="t1", resolution="refunded"),
        event("SatisfactionRated", score=5, ticket_id="t1", comment="quick"),
        event("EventTracked", name="Video Played", properties={"title": "Spring haul"}),
        event("CampaignEnded", None, campaign_id="c1"),
    ]


def stored(system) -> tuple[int, int]:
    """(head of the log, distinct event ids stored): what a rejected request must not change."""
    with system.engine.connect() as conn:
        ids = conn.execute(text("SELECT count(DISTINCT event_id) FROM cohortline_events")).scalar()
    return system.event_store.recorder.max_notification_id() or 0, ids


def post(client, events: list[dict], headers=PRODUCER):
    return client.post("/v1/events", json={"events": events}, headers=headers)


def test_every_type_is_appended_and_read_back(client, system):
    batch = every_type()
    assert {e["type"] for e in batch} == {n for n, s in TYPES.items() if s.accepted_from_senders}
    response = post(client, batch)
    assert response.status_code == 201, response.json
    assert response.json == {"appended": 25, "duplicates": 0, "first_position": 1, "last_position": 25}

    by_stream = {
        ("user", "u1"): [e for e in batch if TYPES[e["type"]].stream == "user"],
        ("order", "o1"): [
            e for e in batch if e["data"].get("order_id") == "o1" and e["type"].startswith("Order")
        ],
        ("campaign", "c1"): [e for e in batch if TYPES[e["type"]].stream == "campaign"],
        ("coupon", "cp1"): [e for e in batch if TYPES[e["type"]].stream == "coupon"],
        ("ticket", "t1"): [e for e in batch if TYPES[e["type"]].stream == "ticket"],
    }
    for (kind, key), sent in by_stream.items():
        facts = system.event_store.stream_events(kind, key)
        assert [f.type_name() for f in facts] == [e["type"] for e in sent], kind
        assert [f.event_id for f in facts] == [e["event_id"] for e in sent]
        assert all(f.context == {"country": "GB", "channel": "app"} for f in facts)
        assert [f.originator_version for f in facts] == list(range(1, len(sent) + 1))
        assert all(f.timestamp.tzinfo is not None for f in facts)
    paid = system.event_store.stream_events("order", "o1")[1]
    assert paid.data["amount"] == Decimal("25.00") and isinstance(paid.data["amount"], Decimal)
    placed = system.event_store.stream_events("order", "o1")[0]
    assert placed.data["items"][0]["unit_price"] == Decimal("15.00")
    assert placed.occurred_at.isoformat() == "2011-01-04T10:00:00+00:00"


def test_a_retried_batch_appends_nothing_twice(client, system):
    batch = [event("SessionStarted"), event("OrderPlaced", order_id="o1", amount="1", currency="EUR")]
    first = post(client, batch).json
    again = post(client, batch)
    assert again.status_code == 201
    assert again.json == {
        "appended": 0,
        "duplicates": 2,
        "first_position": first["first_position"],
        "last_position": first["last_position"],
    }
    mixed = post(client, [*batch, event("SessionStarted")]).json
    assert (mixed["appended"], mixed["duplicates"], mixed["last_position"]) == (1, 2, 3)
    assert stored(system) == (3, 3)


def test_amounts_are_compared_by_value_for_duplicates(client, system):
    placed = event("OrderPlaced", order_id="o1", amount="10.50", currency="EUR")
    post(client, [placed])
    same = dict(placed, data=dict(placed["data"], amount=10.5))
    assert post(client, [same]).json["duplicates"] == 1


def test_an_event_id_reused_with_other_content_is_a_conflict(client, system):
    first = event("SessionStarted")
    post(client, [first])
    before = stored(system)
    reused = dict(first, occurred_at="2011-01-05T10:00:00Z")
    response = post(client, [event("SessionStarted"), reused])
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert [(d["index"], d["code"]) for d in response.json["error"]["details"]] == [(1, "event_id_reused")]
    assert stored(system) == before

    twice_in_batch = event("SessionStarted")
    other = dict(twice_in_batch, user_id="u2")
    response = post(client, [twice_in_batch, other])
    assert [(d["index"], d["code"]) for d in response.json["error"]["details"]] == [(1, "event_id_reused")]
    assert stored(system) == before


def test_every_invalid_event_is_listed_by_index_and_field(client, system):
    response = post(
        client,
        [
            event("SessionStarted"),
            {"type": "OrderTeleported", "occurred_at": "2011-01-04T10:00:00Z", "user_id": "u1"},
            event("OrderPlaced", order_id="o1", amount="-3", currency="EUR", colour="red"),
            {"type": "SessionStarted", "user_id": "u1"},
            event("SatisfactionRated", score=9),
        ],
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    found = {(d["index"], d["field"]) for d in response.json["error"]["details"]}
    assert found == {
        (1, "type"),
        (2, "data.amount"),
        (2, "data.colour"),
        (3, "occurred_at"),
        (4, "data.score"),
    }
    assert stored(system) == (0, 0)


def test_every_broken_rule_is_listed_and_nothing_is_appended(client, system):
    response = post(
        client,
        [
            event("OrderPlaced", order_id="o1", amount="10", currency="EUR"),
            event("OrderShipped", order_id="o1"),
            event("OrderRefunded", order_id="o9", amount="1"),
            event("CampaignEnrolled", campaign_id="nope", group="control"),
            event("CouponRedeemed", coupon_id="cp9", order_id="o1"),
            event("PointsRedeemed", points=1),
        ],
    )
    assert response.status_code == 409
    codes = [(d["index"], d["code"]) for d in response.json["error"]["details"]]
    assert codes == [
        (1, "order_not_paid"),
        (2, "order_not_placed"),
        (3, "campaign_not_found"),
        (4, "coupon_not_issued"),
        (5, "insufficient_points"),
    ]
    assert stored(system) == (0, 0)


def test_malformed_json_and_wrong_shapes(client, system):
    response = client.post(
        "/v1/events", data=b'{"events": [', headers=PRODUCER, content_type="application/json"
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    for body in ({"events": []}, {"events": {}}, [], {"events": [event("SessionStarted")], "extra": 1}):
        response = client.post("/v1/events", json=body, headers=PRODUCER)
        assert response.status_code == 422 and response.json["error"]["code"] == "validation_failed", body
    assert stored(system) == (0, 0)


def test_too_many_or_too_large(client, system):
    response = post(client, [event("SessionStarted", user_id=f"u{n}") for n in range(1001)])
    assert response.status_code == 413 and response.json["error"]["code"] == "batch_too_large"
    padding = "x" * 4000
    huge = [event("UserProfileUpdated", attributes={"bio": padding * 2, "n": n}) for n in range(1000)]
    body = json.dumps({"events": huge}).encode()
    assert len(body) > 5 * 1024 * 1024
    response = client.post("/v1/events", data=body, headers=PRODUCER, content_type="application/json")
    assert response.status_code == 413 and response.json["error"]["code"] == "batch_too_large"
    assert stored(system) == (0, 0)


def test_keys_and_roles(client, system):
    batch = [event("SessionStarted")]
    assert post(client, batch, headers={}).status_code == 401
    assert (
        post(client, batch, headers={"Authorization": "Bearer nope"}).json["error"]["code"] == "unauthorized"
    )
    assert post(client, batch, headers={"Authorization": "Basic prod"}).status_code == 401
    forbidden = post(client, batch, headers={"Authorization": "Bearer read"})
    assert forbidden.status_code == 403 and forbidden.json["error"]["code"] == "forbidden"
    assert stored(system) == (0, 0)
    assert post(client, batch, headers={"Authorization": "Bearer admin"}).status_code == 201


@pytest.mark.parametrize("type_", ["PersonalDataErased"])
def test_system_events_are_not_accepted_from_senders(client, system, type_):
    response = post(client, [event(type_)])
    assert response.status_code == 422
    assert response.json["error"]["details"] == [
        {"index": 0, "field": "type", "message": f"unknown event type {type_!r}"}
    ]
    assert stored(system) == (0, 0)
