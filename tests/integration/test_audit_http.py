"""Audit over HTTP on both storages: stream histories, state at a point, the global log in pages and
as NDJSON, and the tamper-evidence chain, which fails exactly where a stored row was altered."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.integration.test_append_http import event, every_type, post

AUDITOR = {"Authorization": "Bearer audit"}
READER = {"Authorization": "Bearer read"}


def get(client, path: str, headers=AUDITOR, **params):
    response = client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def history(client):
    batches = [
        every_type(),
        [
            event("OrderPlaced", user_id="u7", order_id="A-1", amount="30.00", currency="EUR"),
            event("OrderPaid", user_id="u7", order_id="A-1", amount="30.00"),
        ],
        [event("OrderRefunded", user_id="u7", order_id="A-1", amount="12.50")],
    ]
    for batch in batches:
        assert post(client, batch).status_code == 201
    return [e for batch in batches for e in batch]


def test_a_streams_events_come_in_order_with_their_place_and_hash(client, history):
    body = get(client, "/v1/audit/streams/order/A-1/events")
    events = body["events"]
    assert [e["type"] for e in events] == ["OrderPlaced", "OrderPaid", "OrderRefunded"]
    assert [e["version"] for e in events] == [1, 2, 3]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    sent = {e["event_id"]: e for e in history}
    for got in events:
        assert got["data"] == sent[got["event_id"]]["data"]
        assert got["occurred_at"] == sent[got["event_id"]]["occurred_at"]
        assert len(got["hash"]) == 64 and got["recorded_at"].endswith("Z")
    user = get(client, "/v1/audit/streams/user/u1/events")["events"]
    assert "UserRegistered" in {e["type"] for e in user} and all(e["user_id"] == "u1" for e in user)


def test_state_at_a_version_or_a_time_and_404_before_it_existed(client, history):
    events = get(client, "/v1/audit/streams/order/A-1/events")["events"]
    placed = get(client, "/v1/audit/streams/order/A-1/state", version=1)
    assert placed["version"] == 1 and placed["state"]["status"] == "placed"
    assert placed["state"]["amount"] == "30.00"
    paid = get(client, "/v1/audit/streams/order/A-1/state", as_of=events[1]["recorded_at"])
    assert paid["version"] == 2 and paid["state"]["paid"] == "30.00"
    now = get(client, "/v1/audit/streams/order/A-1/state")
    assert now["version"] == 3 and now["state"]["refunded"] == "12.50"
    before = client.get(
        "/v1/audit/streams/order/A-1/state", query_string={"as_of": "2001-01-01T00:00:00Z"}, headers=AUDITOR
    )
    assert before.status_code == 404 and before.json["error"]["code"] == "not_yet_existing"
    missing = client.get("/v1/audit/streams/order/nope/events", headers=AUDITOR)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "stream_not_found"
    both = client.get(
        "/v1/audit/streams/order/A-1/state",
        query_string={"version": 1, "as_of": "2030-01-01T00:00:00Z"},
        headers=AUDITOR,
    )
    assert both.status_code == 400 and both.json["error"]["details"][0]["field"] == "version"
    assert client.get("/v1/audit/streams/planet/x/events", headers=AUDITOR).status_code == 404


def test_the_log_pages_and_streams_as_ndjson_in_order(client, system, history):
    head = system.event_store.recorder.max_notification_id()
    paged, after = [], 0
    while after is not None:
        body = get(client, "/v1/audit/log", after=after, limit=7)
        paged += body["events"]
        after = body["next_after"]
    assert [e["position"] for e in paged] == list(range(1, head + 1))
    assert {e["event_id"] for e in paged} == {e["event_id"] for e in history}
    response = client.get("/v1/audit/log", headers={**AUDITOR, "Accept": "application/x-ndjson"})
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.data.decode().splitlines()]
    assert lines == paged
    tail = client.get(
        "/v1/audit/log",
        query_string={"after": 5, "limit": 3},
        headers={**AUDITOR, "Accept": "application/x-ndjson"},
    )
    assert [json.loads(line)["position"] for line in tail.data.decode().splitlines()] == [6, 7, 8]


def test_verify_passes_untouched_and_fails_exactly_where_a_row_was_altered(client, system, history):
    head = system.event_store.recorder.max_notification_id()
    verdict = get(client, "/v1/audit/verify")
    last = get(client, "/v1/audit/log", after=head - 1)["events"][-1]
    assert verdict == {"ok": True, "events": head, "head_hash": last["hash"]}
    altered = head - 2
    tamper(system.engine, altered)
    verdict = get(client, "/v1/audit/verify")
    assert verdict["ok"] is False
    assert verdict["broken_at"] == altered and verdict["events"] == altered - 1
    assert "hash" in verdict["reason"]


def tamper(engine, position: int) -> None:
    """Change one stored event the way someone with direct database access could, past the
    append-only triggers."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE cohortline_events DISABLE TRIGGER cohortline_events_append_only"))
            conn.execute(
                text("UPDATE cohortline_events SET state = state || '\\x20'::bytea WHERE id = :p"),
                {"p": position},
            )
            conn.execute(text("ALTER TABLE cohortline_events ENABLE TRIGGER cohortline_events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER cohortline_events_no_update"))
            conn.execute(
                text("UPDATE cohortline_events SET state = CAST(state || ' ' AS BLOB) WHERE id = :p"),
                {"p": position},
            )


def test_audit_needs_the_auditor_role(client, history):
    assert client.get("/v1/audit/verify").status_code == 401
    assert client.get("/v1/audit/verify", headers=READER).status_code == 403
    assert client.get("/v1/audit/log", headers=READER).status_code == 403


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/audit/log?after=1339493243555952117151694848", "after"),
        ("/v1/audit/streams/user/u1/state?version=99999999999999999999", "version"),
    ],
)
def test_positions_beyond_what_the_store_holds_are_refused_not_a_server_error(client, path, field):
    response = client.get(path, headers=AUDITOR)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["details"][0]["field"] == field
