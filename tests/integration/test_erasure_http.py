"""Erasure by crypto-shredding over HTTP on both storages: personal fields are encrypted at rest,
read as erased everywhere after `POST /v1/admin/users/{id}/erase`, the hash chain still verifies,
and no read model or analytics number changes."""

from __future__ import annotations

from sqlalchemy import text

from domain.model import ERASED
from projections.schema import metadata
from streams.local import LocalFollower
from tests.integration.test_append_http import every_type, post

ADMIN = {"Authorization": "Bearer admin"}
AUDITOR = {"Authorization": "Bearer audit"}
READER = {"Authorization": "Bearer read"}
PERSONAL = {("UserRegistered", "attributes"), ("UserProfileUpdated", "attributes"),
            ("TicketOpened", "subject"), ("SatisfactionRated", "comment")}  # fmt: skip


def read_models(system) -> dict[str, list]:
    with system.engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(t.select())), key=repr)
            for t in metadata.sorted_tables
            if t.name.startswith("rm_")
        }


def personal_values(client) -> dict[tuple[str, str], object]:
    found = {}
    for kind, key in (("user", "u1"), ("ticket", "t1")):
        events = client.get(f"/v1/audit/streams/{kind}/{key}/events", headers=AUDITOR).json["events"]
        for e in events:
            for type_, field in PERSONAL:
                if e["type"] == type_ and field in e["data"]:
                    found[(type_, field)] = e["data"][field]
    return found


def test_erasure_shreds_personal_fields_and_changes_no_number(client, system):
    assert post(client, every_type()).status_code == 201
    follower = LocalFollower(system.log_reader(), system.runners)
    follower.catch_up()
    before = personal_values(client)
    assert set(before) == PERSONAL and before[("TicketOpened", "subject")] == "late parcel"
    with system.engine.connect() as conn:
        stored = b"".join(bytes(r[0]) for r in conn.execute(text("SELECT state FROM cohortline_events")))
    assert b"late parcel" not in stored and b"Leeds" not in stored  # encrypted at rest
    models = read_models(system)
    user = client.get("/v1/users/u1", headers=READER).json
    found = client.get("/v1/users/search", query_string={"q": "u1"}, headers=READER).json["users"]

    response = client.post("/v1/admin/users/u1/erase", headers=ADMIN)
    assert response.status_code == 202 and response.json["erased"] is True
    follower.catch_up()

    erased = {
        ("UserRegistered", "attributes"): {"name": ERASED},  # an object keeps its keys, loses its values
        ("UserProfileUpdated", "attributes"): {"city": ERASED},
        ("TicketOpened", "subject"): ERASED,
        ("SatisfactionRated", "comment"): ERASED,
    }
    assert personal_values(client) == erased
    state = client.get("/v1/audit/streams/user/u1/state", headers=AUDITOR).json["state"]
    assert state["erased"] is True and set(state["attributes"].values()) == {ERASED}
    events = client.get("/v1/audit/streams/user/u1/events", headers=AUDITOR).json["events"]
    assert events[-1]["type"] == "PersonalDataErased"
    assert next(e for e in events if e["type"] == "UserRegistered")["data"]["channel"] == "app"
    assert client.get("/v1/audit/verify", headers=AUDITOR).json["ok"] is True
    assert read_models(system) == models
    after = client.get("/v1/users/u1", headers=READER).json
    assert {k: v for k, v in after.items() if k not in ("as_of",)} == {
        k: v for k, v in user.items() if k != "as_of"
    }
    assert client.get("/v1/users/search", query_string={"q": "u1"}, headers=READER).json["users"] == found


def test_erasing_needs_a_known_user_and_the_admin_role(client, system):
    assert post(client, every_type()).status_code == 201
    missing = client.post("/v1/admin/users/nobody/erase", headers=ADMIN)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "user_not_found"
    assert client.post("/v1/admin/users/u1/erase", headers=READER).status_code == 403
