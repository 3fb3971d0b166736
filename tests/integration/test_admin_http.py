"""Admin over HTTP on both storages: verify, a rebuild started by POST that repairs a damaged read
model while queries keep answering, its progress, and the errors."""

from __future__ import annotations

import time

from sqlalchemy import text

from tests import reference
from tests.integration.test_analytics_http import END, READER, START, history  # noqa: F401 - fixture
from tests.integration.test_analytics_http import get as read

ADMIN = {"Authorization": "Bearer admin"}


def admin(client, method: str, path: str):
    return getattr(client, method)(path, headers=ADMIN)


def test_verify_finds_damage_and_a_rebuild_repairs_it_while_queries_answer(client, system, history):  # noqa: F811
    verdict = admin(client, "get", "/v1/admin/projections/verify")
    assert verdict.status_code == 200 and verdict.json["ok"] is True, verdict.json
    assert verdict.json["checked"][0]["name"] == "analytics"
    with system.engine.begin() as conn:
        conn.execute(text("UPDATE rm_cohort_sizes SET users = users + 3"))
    damaged = admin(client, "get", "/v1/admin/projections/verify").json
    assert damaged["ok"] is False and {d["table"] for d in damaged["differences"]} == {"rm_cohort_sizes"}
    assert admin(client, "get", "/v1/admin/projections/analytics").json["state"] == "never_rebuilt"

    started = admin(client, "post", "/v1/admin/projections/analytics/rebuild")
    assert started.status_code == 202 and started.json["state"] == "running"
    deadline = time.monotonic() + 120
    while True:
        answered = client.get(
            "/v1/activity/active-users",
            query_string={"from": START.isoformat(), "to": END.isoformat()},
            headers=READER,
        )
        assert answered.status_code == 200
        state = admin(client, "get", "/v1/admin/projections/analytics").json
        if state["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["state"] == "switched", state
    assert state["position"] == len(history) and state["finished_at"]
    assert admin(client, "get", "/v1/admin/projections/verify").json["ok"] is True
    params = {"granularity": "month", "cohort": "first_seen", "return": "active", "mode": "on", "periods": 2}
    body = read(
        client, "/v1/retention/cohorts", **params, **{"from": START.isoformat(), "to": END.isoformat()}
    )
    watermark = max(e.occurred_at for e in history)
    want = reference.retention(history, "month", "first_seen", "active", "on", START, END, 2, watermark, None)
    assert body["cohorts"] == want


def test_admin_errors(client, history):  # noqa: F811
    missing = admin(client, "post", "/v1/admin/projections/nope/rebuild")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "projection_not_found"
    assert admin(client, "get", "/v1/admin/projections/nope").status_code == 404
    assert client.get("/v1/admin/projections/verify", headers=READER).status_code == 403
    assert client.post("/v1/admin/projections/analytics/rebuild", headers=READER).status_code == 403
