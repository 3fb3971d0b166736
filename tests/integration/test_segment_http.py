"""The Segment-compatible routes on both storages: every way a producer key is sent, messageIds as
idempotency keys, whole batches refused with the message named, gzip, the limits, and custom events
counted as activity and filtered by name."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from streams.local import LocalFollower
from streams.log_reader import LogReader

BASIC = {"Authorization": "Basic " + base64.b64encode(b"prod:").decode()}
READER = {"Authorization": "Bearer read"}
AUDITOR = {"Authorization": "Bearer audit"}


def message(event: str, user: str = "u1", n: int = 0, **properties: object) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties,
        "messageId": f"{user}-{event}-{n}",
        "timestamp": "2026-11-30T10:00:00Z",
    }


def head(client) -> int:
    return client.get("/v1/status", headers=READER).json["head"]


def logged(client) -> list[dict]:
    return client.get("/v1/audit/log?limit=10000", headers=AUDITOR).json["events"]


def test_the_key_as_segment_libraries_send_it(client):
    body = {"batch": [message("Video Played")]}
    assert client.post("/v1/batch", json=body, headers=BASIC).json == {
        "success": True,
        "appended": 1,
        "duplicates": 0,
        "last_position": 1,
    }
    assert client.post("/v1/batch", json=body | {"writeKey": "prod"}).json["duplicates"] == 1
    blank_basic = {"Authorization": "Basic " + base64.b64encode(b":").decode()}
    assert client.post("/v1/batch", json=body | {"writeKey": "prod"}, headers=blank_basic).status_code == 200
    assert client.post("/v1/batch", json=body, headers={"Authorization": "Bearer prod"}).status_code == 200
    unknown = {"Authorization": "Basic " + base64.b64encode(b"nope:").decode()}
    assert client.post("/v1/batch", json=body, headers=unknown).status_code == 401
    assert client.post("/v1/batch", json=body | {"writeKey": "nope"}).status_code == 401
    missing = client.post("/v1/batch", json=body)
    assert missing.status_code == 401 and "write key" in missing.json["error"]["message"]
    reader = {"Authorization": "Basic " + base64.b64encode(b"read:").decode()}
    assert client.post("/v1/batch", json=body, headers=reader).status_code == 403
    assert head(client) == 1


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen"])
def test_each_single_call_route(client, kind):
    single = {
        "userId": "u1",
        "event": "Video Played",
        "name": "Home",
        "traits": {"plan": "pro"},
        "messageId": "m",
    }
    answer = client.post(f"/v1/{kind}", json=single, headers=BASIC)
    assert answer.status_code == 200 and answer.json["appended"] == 1
    (recorded,) = logged(client)
    assert recorded["type"] == ("UserProfileUpdated" if kind == "identify" else "EventTracked")
    other = "page" if kind != "page" else "track"
    refused = client.post(f"/v1/{kind}", json=single | {"type": other, "messageId": "n"}, headers=BASIC)
    assert refused.status_code == 422 and refused.json["error"]["details"][0]["field"] == "type"


def test_a_message_id_twice_in_one_batch_is_one_event(client):
    twice = [message("Video Played"), message("Video Played") | {"properties": {"again": True}}]
    assert client.post("/v1/batch", json={"batch": twice}, headers=BASIC).json["appended"] == 1
    assert [e["data"].get("name") for e in logged(client)] == ["Video Played"]


def test_a_retried_batch_is_acknowledged_even_with_a_new_clock_correction(client):
    batch = [
        message("Order Completed", order_id="o1", total="12.50", currency="GBP"),
        message("Video Played"),
    ]
    first = client.post("/v1/batch", json={"batch": batch, "sentAt": "2026-11-30T10:00:05Z"}, headers=BASIC)
    retried = client.post("/v1/batch", json={"batch": batch, "sentAt": "2026-11-30T10:00:35Z"}, headers=BASIC)
    assert first.json["appended"] == 3 and retried.json == first.json | {"appended": 0, "duplicates": 3}
    assert sorted(e["type"] for e in logged(client)) == ["EventTracked", "OrderPaid", "OrderPlaced"]


def test_an_invalid_message_refuses_the_whole_batch_naming_it(client):
    batch = [
        message("Video Played"),
        message("Order Completed", order_id="o1"),
        {"type": "alias", "userId": "u"},
    ]
    refused = client.post("/v1/batch", json={"batch": batch}, headers=BASIC)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "validation_failed"
    assert [(d["index"], d["field"]) for d in refused.json["error"]["details"]] == [
        (1, "properties.total"),
        (2, "type"),
    ]
    assert head(client) == 0


def test_a_conflict_names_the_message_not_the_event(client):
    batch = [
        message("Order Completed", order_id="o1", total=10),
        message("Order Refunded", order_id="o1", total=4),
        message("Order Refunded", n=1, order_id="o2", total=4),
    ]
    refused = client.post("/v1/batch", json={"batch": batch}, headers=BASIC)
    assert refused.status_code == 409
    assert [(d["index"], d["code"]) for d in refused.json["error"]["details"]] == [(2, "order_not_placed")]
    assert head(client) == 0


def test_gzip_bodies_and_the_limits(client):
    body = json.dumps({"batch": [message("Video Played", n=n) for n in range(2500)]}).encode()
    zipped = {**BASIC, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/v1/batch", data=gzip.compress(body), headers=zipped).json["appended"] == 2500
    too_many = json.dumps({"batch": [message("Video Played", n=n) for n in range(2501)]}).encode()
    assert client.post("/v1/batch", data=too_many, headers=BASIC).status_code == 413
    bomb = gzip.compress(b'{"batch": [' + b" " * (6 * 1024 * 1024) + b"]}")
    answer = client.post("/v1/batch", data=bomb, headers=zipped)
    assert answer.status_code == 413 and answer.json["error"]["code"] == "batch_too_large"
    broken = client.post("/v1/batch", data=b"\x1f\x8bnot gzip", headers=zipped)
    assert broken.status_code == 400 and broken.json["error"]["code"] == "invalid_body"
    assert client.post("/v1/batch", data=b"{", headers=BASIC).json["error"]["code"] == "invalid_json"
    assert client.post("/v1/batch", json={"batch": []}, headers=BASIC).status_code == 422
    assert head(client) == 2500


def test_custom_events_count_as_activity_and_filter_by_name(client, system):
    batch = [
        message("Video Played", "u1"),
        message("Video Played", "u2"),
        message("Checked Out Blog", "u3"),
        {"type": "page", "userId": "u4", "name": "Home", "timestamp": "2026-11-30T11:00:00Z"},
    ]
    assert client.post("/v1/batch", json={"batch": batch}, headers=BASIC).json["appended"] == 4
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    query = "/v1/activity/active-users?granularity=day&from=2026-11-30&to=2026-11-30"
    assert client.get(query, headers=READER).json["series"] == [{"period": "2026-11-30", "users": 4}]
    for name, users in (("Video Played", 2), ("Viewed Home Page", 1), ("Never Tracked", 0)):
        filtered = client.get(f"{query}&filter=event:{name}", headers=READER).json
        assert filtered["series"] == [{"period": "2026-11-30", "users": users}], name
    too_long = client.get(f"{query}&filter=event:{'x' * 201}", headers=READER)
    assert too_long.status_code == 400 and too_long.json["error"]["details"][0]["field"] == "filter"
