"""GET /metrics in process: who may read it, what the API counts, and that its read-model gauges
say what /v1/status says; per-key rate limits; a backend that is down answers 503, not 500."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from api.app import create_app
from api.errors import backend_unavailable
from infra.bootstrap import build_system
from infra.config import ConfigError, load_settings
from streams.local import LocalFollower
from tests.integration.test_append_http import event
from tests.metrics_text import samples, value
from tests.processes import run_command

KEYS = "prod:producer,read:reader,scrape:metrics,admin:admin"


def scrape(client, key: str = "scrape") -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


@pytest.fixture
def metered(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    system = build_system(
        load_settings(
            {"COHORTLINE_DATABASE_URL": url, "COHORTLINE_API_KEYS": KEYS, "COHORTLINE_RATE_LIMIT": "off"}
        )
    )
    yield system, create_app(system.api_context()).test_client()
    system.close()


def test_metrics_need_the_metrics_role(metered):
    _, client = metered
    assert client.get("/metrics").status_code == 401
    for key in ("prod", "read"):
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert (refused.status_code, refused.json["error"]["code"]) == (403, "forbidden")
    for key in ("scrape", "admin"):
        assert client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_appends_requests_and_read_models_are_counted(metered):
    system, client = metered
    before = scrape(client)
    user_id = f"person-{uuid.uuid4().hex[:8]}@example.com"
    batch = [
        event("UserRegistered", user_id, channel="web"),
        event("SessionStarted", user_id, session_id="s1"),
    ]
    producer = {"Authorization": "Bearer prod"}
    for appended, duplicates in ((2, 0), (0, 2)):
        answer = client.post("/v1/events", json={"events": batch}, headers=producer).json
        assert (answer["appended"], answer["duplicates"]) == (appended, duplicates)
    reader = {"Authorization": "Bearer read"}
    assert client.get(f"/v1/users/{user_id}", headers=reader).status_code in (200, 404)
    assert client.get("/no/such/page").status_code == 404
    LocalFollower(system.log_reader(), system.runners).catch_up()
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("cohortline_events_appended_total", source="events") == 2
    assert grew("cohortline_events_duplicates_total", source="events") == 2
    assert grew("cohortline_http_requests_total", route="/v1/events", method="POST", status="201") == 2
    assert grew("cohortline_http_requests_total", route="/v1/users/<text:user_id>", method="GET") == 1
    assert grew("cohortline_http_requests_total", route="unmatched", status="404") == 1
    assert grew("cohortline_http_request_duration_seconds_count", route="/v1/events", method="POST") == 2
    assert grew("cohortline_projection_events_applied_total", projection="analytics") == 2
    assert grew("cohortline_projection_batch_seconds_count", projection="analytics") >= 1
    assert user_id not in after, "a user id reached a label"

    status = client.get("/v1/status", headers=reader).json
    assert value(after, "cohortline_log_head_position") == status["head"] == 2
    for projection in status["projections"]:
        name = projection["name"]
        assert value(after, "cohortline_projection_position", projection=name) == projection["position"]
        assert value(after, "cohortline_projection_lag_events", projection=name) == 0
        assert value(after, "cohortline_projection_halted", projection=name) == 0
        assert value(after, "cohortline_dead_letters", projection=name) == 0
    assert value(after, "cohortline_read_models_up") == 1
    names = {name for name, _ in samples(after)}
    assert all(n.startswith(("cohortline_", "process_", "python_")) for n in names), names


def test_a_rebuild_reports_its_progress(metered):
    system, client = metered
    producer = {"Authorization": "Bearer prod"}
    client.post(
        "/v1/events", json={"events": [event("UserRegistered", "u-r", channel="web")]}, headers=producer
    )
    LocalFollower(system.log_reader(), system.runners).catch_up()
    system.rebuilds.run("analytics")
    text = scrape(client)
    assert value(text, "cohortline_rebuild_running", projection="analytics") == 0
    assert value(text, "cohortline_rebuild_target", projection="analytics") == 1
    assert value(text, "cohortline_rebuild_position", projection="analytics") == 1


@pytest.fixture
def limited(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    settings = load_settings(
        {"COHORTLINE_DATABASE_URL": url, "COHORTLINE_API_KEYS": KEYS, "COHORTLINE_RATE_LIMIT": "3/minute"}
    )
    system = build_system(settings)
    yield create_app(system.api_context()).test_client()
    system.close()


def test_each_key_has_its_own_budget_and_429_says_when_to_retry(limited):
    reader = {"Authorization": "Bearer read"}
    assert [limited.get("/v1/status", headers=reader).status_code for _ in range(3)] == [200] * 3
    refused = limited.get("/v1/status", headers=reader)
    assert (refused.status_code, refused.json["error"]["code"]) == (429, "rate_limited")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert limited.get("/v1/status", headers={"Authorization": "Bearer admin"}).status_code == 200
    assert limited.get("/metrics", headers={"Authorization": "Bearer admin"}).status_code == 200  # not /v1/
    assert "Retry-After" not in limited.get("/v1/status", headers={"Authorization": "Bearer admin"}).headers
    anonymous = [limited.get("/v1/status").status_code for _ in range(4)]
    assert anonymous == [401, 401, 401, 429], "a caller without a key spends its address's budget"


def test_rate_limits_are_configured_or_refused_at_start():
    assert load_settings({"COHORTLINE_RATE_LIMIT": "off"}).rate_limit is None
    assert load_settings({}).rate_limit == "100/second"
    assert load_settings({"COHORTLINE_RATE_LIMIT": "5/second;100/minute"}).rate_limit == "5/second;100/minute"
    for bad, variable in (
        ({"COHORTLINE_RATE_LIMIT": "lots"}, "COHORTLINE_RATE_LIMIT"),
        ({"COHORTLINE_RATE_LIMIT_STORAGE": "carrier-pigeon://x"}, "COHORTLINE_RATE_LIMIT_STORAGE"),
    ):
        with pytest.raises(ConfigError, match=variable):
            load_settings(bad)


def test_an_unreachable_backend_is_the_operators_matter_not_a_bug():
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert backend_unavailable(lost)
    assert not backend_unavailable(ValueError("a bug"))


@pytest.mark.parametrize("command", ["relay", "worker"])
def test_a_taken_metrics_port_is_refused_by_name(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env |= {
        "COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COHORTLINE_KAFKA_URL": "kafka://127.0.0.1:9",
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_command([command, "--metrics-port", str(port)], env, tmp_path, 60)
    assert done.returncode == 2, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
