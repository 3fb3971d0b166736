"""The embedded default over HTTP: SQLite, projections in process, search from SQL."""

import json
import os

import requests

from tests.integration.test_append_http import event, every_type
from tests.metrics_text import value
from tests.processes import serve, wait_until

KEYS = "prod-key:producer,read-key:reader,admin-key:admin"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_order_travels_from_post_to_the_user_state(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = KEYS
    server, base = serve(env, tmp_path)
    try:
        body = {
            "events": [
                {
                    "type": "OrderPlaced",
                    "user_id": "17850",
                    "occurred_at": "2010-12-01T08:26:00Z",
                    "data": {"order_id": "536365", "amount": "139.12", "currency": "GBP"},
                    "context": {"country": "GB"},
                }
            ]
        }
        created = requests.post(f"{base}/v1/events", json=body, headers=auth("prod-key"), timeout=10)
        assert created.status_code == 201, created.text
        last = created.json()["last_position"]

        user = requests.get(
            f"{base}/v1/users/17850",
            params={"min_position": last, "wait_ms": 5000},
            headers=auth("read-key"),
            timeout=15,
        )
        assert user.status_code == 200, user.text
        state = user.json()
        assert (state["orders"], state["country"], state["first_order_at"]) == (
            1,
            "GB",
            "2010-12-01T08:26:00Z",
        )
        assert state["as_of"] >= last and state["watermark"] == "2010-12-01T08:26:00Z"

        found = requests.get(
            f"{base}/v1/users/search", params={"q": "178"}, headers=auth("admin-key"), timeout=10
        )
        assert [u["user_id"] for u in found.json()["users"]] == ["17850"]
        status = requests.get(f"{base}/v1/status", headers=auth("read-key"), timeout=10).json()
        assert status["backends"] == {
            "event_store": "sqlite",
            "read_models": "sqlite",
            "projections": "in-process",
            "search": "sqlite",
        }
        assert (tmp_path / "var" / "cohortline.db").exists()

        assert requests.get(f"{base}/v1/users/17850", timeout=10).status_code == 401
        assert requests.get(f"{base}/v1/users/17850", headers=auth("wrong"), timeout=10).status_code == 401
        forbidden = requests.post(f"{base}/v1/events", json=body, headers=auth("read-key"), timeout=10)
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        missing = requests.get(f"{base}/v1/users/nobody", headers=auth("read-key"), timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_found"
        ahead = requests.get(
            f"{base}/v1/users/17850",
            params={"min_position": last + 100},
            headers=auth("read-key"),
            timeout=10,
        )
        assert ahead.status_code == 202 and ahead.json() == {"as_of": last, "min_position": last + 100}
        assert server.stop(timeout=15) == 0, server.output()
    finally:
        server.stop()


def test_serving_without_keys_needs_open_mode_on_loopback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    from tests.processes import Command

    refused = Command(["serve", "--port", "0"], env, tmp_path, "no-keys")
    assert refused.process.wait(30) == 2 and "COHORTLINE_API_KEYS" in refused.output()
    exposed = Command(["serve", "--open", "--host", "0.0.0.0"], env, tmp_path, "open-exposed")
    assert exposed.process.wait(30) == 2 and "loopback" in exposed.output()
    server, base = serve(env, tmp_path, "--open")
    try:
        assert requests.get(f"{base}/v1/status", timeout=10).status_code == 200
        assert "OPEN MODE" in server.output()
    finally:
        server.stop()


def test_a_served_key_that_spends_its_budget_waits_and_is_counted(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env |= {"COHORTLINE_API_KEYS": "read-key:reader,scrape-key:metrics", "COHORTLINE_RATE_LIMIT": "5/minute"}
    server, base = serve(env, tmp_path, "--workers", "1")
    try:
        answers = [requests.get(f"{base}/v1/status", headers=auth("read-key"), timeout=10) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
        metrics = requests.get(f"{base}/metrics", headers=auth("scrape-key"), timeout=10).text
        assert value(metrics, "cohortline_http_requests_total", route="/v1/status", status="429") == 1
    finally:
        server.stop()


def test_auditors_and_operators_on_the_embedded_default(tmp_path):
    """A running `serve` on SQLite: NDJSON export, verify, erase, and a rebuild while appending."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = KEYS
    server, base = serve(env, tmp_path)
    admin = auth("admin-key")
    try:
        created = requests.post(
            f"{base}/v1/events", json={"events": every_type()}, headers=auth("prod-key"), timeout=10
        )
        assert created.status_code == 201, created.text
        last = created.json()["last_position"]
        exported = requests.get(
            f"{base}/v1/audit/log",
            headers={**admin, "Accept": "application/x-ndjson"},
            stream=True,
            timeout=10,
        )
        assert [json.loads(line)["position"] for line in exported.iter_lines()] == list(range(1, last + 1))
        assert requests.get(f"{base}/v1/audit/verify", headers=admin, timeout=10).json()["ok"] is True

        assert requests.post(f"{base}/v1/admin/users/u1/erase", headers=admin, timeout=10).status_code == 202
        ticket = requests.get(f"{base}/v1/audit/streams/ticket/t1/events", headers=admin, timeout=10).json()
        assert ticket["events"][0]["data"]["subject"] == "[erased]"

        assert (
            requests.post(
                f"{base}/v1/admin/projections/analytics/rebuild", headers=admin, timeout=10
            ).status_code
            == 202
        )
        more = [event("OrderPlaced", order_id=f"late-{n}", amount="5.00", currency="EUR") for n in range(20)]
        appended = requests.post(
            f"{base}/v1/events", json={"events": more}, headers=auth("prod-key"), timeout=10
        )
        head = appended.json()["last_position"]

        def switched() -> bool:
            state = requests.get(f"{base}/v1/admin/projections/analytics", headers=admin, timeout=10).json()
            return state["state"] == "switched"

        wait_until(switched, 60, "the rebuild to switch", server)
        user = requests.get(
            f"{base}/v1/users/u1", params={"min_position": head, "wait_ms": 5000}, headers=admin, timeout=15
        ).json()
        assert user["orders"] == 2 + 20  # o1 and o2 of every_type, then the 20 appended during the rebuild
        verdict = requests.get(f"{base}/v1/admin/projections/verify", headers=admin, timeout=60).json()
        assert verdict["ok"] is True, verdict["differences"]
    finally:
        server.stop()
