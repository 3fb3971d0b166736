"""The embedded default over HTTP: SQLite, projections in process, search from SQL."""

import os

import requests

from tests.processes import serve

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
