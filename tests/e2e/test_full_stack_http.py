"""The full stack over HTTP: PostgreSQL event store → relay → Kafka → Faust worker → PostgreSQL and
Elasticsearch read models → Flask."""

import requests

from tests.integration.test_append_http import event, every_type
from tests.metrics_text import value
from tests.processes import Command, free_port, serve, wait_until

KEYS = "prod-key:producer,read-key:reader"


def test_an_order_travels_the_whole_way(full_stack_env, tmp_path):
    env = dict(full_stack_env, COHORTLINE_API_KEYS=KEYS)
    server, base = serve(env, tmp_path)
    relay_metrics, worker_metrics = free_port(), free_port()
    relay = Command(["relay", "--metrics-port", str(relay_metrics)], env, tmp_path, "relay")
    worker = Command(["worker", "--metrics-port", str(worker_metrics)], env, tmp_path, "worker")
    try:
        body = {
            "events": [
                {
                    "type": "UserRegistered",
                    "user_id": "12583",
                    "occurred_at": "2010-12-01T08:00:00Z",
                    "data": {"channel": "web"},
                    "context": {"country": "FR", "channel": "web"},
                },
                {
                    "type": "OrderPlaced",
                    "user_id": "12583",
                    "occurred_at": "2010-12-01T08:45:00Z",
                    "data": {"order_id": "536370", "amount": "855.86", "currency": "GBP"},
                    "context": {"country": "FR"},
                },
            ]
        }
        created = requests.post(
            f"{base}/v1/events", json=body, headers={"Authorization": "Bearer prod-key"}, timeout=10
        )
        assert created.status_code == 201, created.text
        last = created.json()["last_position"]
        headers = {"Authorization": "Bearer read-key"}

        def user_state():
            response = requests.get(
                f"{base}/v1/users/12583",
                params={"min_position": last, "wait_ms": 2000},
                headers=headers,
                timeout=15,
            )
            return response.json() if response.status_code == 200 else None

        state = wait_until(user_state, 180, "the order in the read model", server, relay, worker)
        assert (state["orders"], state["signup_at"], state["channel"]) == (1, "2010-12-01T08:00:00Z", "web")

        def searched():
            response = requests.get(
                f"{base}/v1/users/search", params={"country": "FR"}, headers=headers, timeout=10
            )
            return response.json()["users"]

        found = wait_until(searched, 60, "the user document in Elasticsearch", server, relay, worker)
        assert found[0]["user_id"] == "12583" and found[0]["orders"] == 1
        status = requests.get(f"{base}/v1/status", headers=headers, timeout=10).json()
        assert (
            status["backends"]["search"] == "elasticsearch" and status["backends"]["projections"] == "kafka"
        )
        assert status["head"] == last and status["projections"][0]["lag_events"] == 0
        assert_relay_and_worker_metrics(relay_metrics, worker_metrics, last, relay, worker)
        stopped = {c.name: c.stop(timeout=30) for c in (worker, relay, server)}
        assert stopped == {"worker": 0, "relay": 0, "serve": 0}, [c.output() for c in (worker, relay, server)]
    finally:
        for command in (worker, relay, server):
            command.stop()


def assert_relay_and_worker_metrics(relay_port: int, worker_port: int, last: int, *watched: Command) -> None:
    relay_text = requests.get(f"http://127.0.0.1:{relay_port}/metrics", timeout=10).text
    assert value(relay_text, "cohortline_relay_position") == last
    assert value(relay_text, "cohortline_relay_events_published_total") == last

    def caught_up() -> str | None:
        text = requests.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text
        assigned = value(text, "cohortline_kafka_assigned_partitions")
        lag = value(text, "cohortline_kafka_consumer_lag_messages")
        committed = value(text, "cohortline_kafka_consumer_committed_offset")
        return text if assigned == 4 and lag == 0 and committed > 0 else None

    text = wait_until(caught_up, 60, "the worker to report no consumer lag", *watched)
    assert value(text, "cohortline_projection_events_applied_total", projection="analytics") == last
    assert value(text, "cohortline_projection_batch_seconds_count", projection="analytics") >= 1


def test_auditors_and_operators_on_the_full_stack(full_stack_env, tmp_path):
    """Verify, erase, verify the read models, and a blue/green rebuild under a running Kafka worker:
    events appended after the switch are counted once."""
    env = dict(
        full_stack_env, COHORTLINE_API_KEYS="prod-key:producer,read-key:reader+auditor,admin-key:admin"
    )
    server, base = serve(env, tmp_path)
    relay = Command(["relay"], env, tmp_path, "relay")
    worker = Command(["worker"], env, tmp_path, "worker")
    producer, reader, admin = (
        {"Authorization": f"Bearer {k}"} for k in ("prod-key", "read-key", "admin-key")
    )
    watched = (server, relay, worker)

    def append(events: list[dict]) -> int:
        created = requests.post(f"{base}/v1/events", json={"events": events}, headers=producer, timeout=10)
        assert created.status_code == 201, created.text
        return created.json()["last_position"]

    def user(position: int) -> dict | None:
        response = requests.get(
            f"{base}/v1/users/u1",
            params={"min_position": position, "wait_ms": 2000},
            headers=reader,
            timeout=15,
        )
        return response.json() if response.status_code == 200 else None

    try:
        last = append(every_type())
        before = wait_until(lambda: user(last), 180, "the history in the read models", *watched)
        chain = requests.get(f"{base}/v1/audit/verify", headers=reader, timeout=30).json()
        assert chain["ok"] is True and chain["events"] == last

        def verified() -> dict | None:
            response = requests.get(f"{base}/v1/admin/projections/verify", headers=admin, timeout=120)
            return response.json() if response.status_code == 200 else None

        assert wait_until(verified, 120, "the read models to verify", *watched)["ok"] is True

        erased = requests.post(f"{base}/v1/admin/users/u1/erase", headers=admin, timeout=30)
        assert erased.status_code == 202
        events = requests.get(f"{base}/v1/audit/streams/ticket/t1/events", headers=reader, timeout=10).json()
        assert events["events"][0]["data"]["subject"] == "[erased]"
        assert requests.get(f"{base}/v1/audit/verify", headers=reader, timeout=30).json()["ok"] is True

        started = requests.post(f"{base}/v1/admin/projections/analytics/rebuild", headers=admin, timeout=10)
        assert started.status_code == 202

        def switched() -> dict | None:
            state = requests.get(f"{base}/v1/admin/projections/analytics", headers=admin, timeout=10).json()
            assert state["state"] in ("running", "switched"), state
            return state if state["state"] == "switched" else None

        wait_until(switched, 180, "the rebuild to switch", *watched)
        more = append([event("OrderPlaced", order_id="o-after", amount="5.00", currency="EUR")])
        after = wait_until(lambda: user(more), 180, "the order appended after the switch", *watched)
        assert after["orders"] == before["orders"] + 1
        assert after["net_revenue"] == before["net_revenue"]
    finally:
        for command in (worker, relay, server):
            command.stop()
