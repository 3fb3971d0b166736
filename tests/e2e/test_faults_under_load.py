"""Faults survived under a steady load (issue 15): PostgreSQL, Kafka or Elasticsearch restarted, and
the worker killed in the middle of a rebuild's switch, while producers append the demo history over
HTTP (retrying with the same batch until acknowledged) and readers query analytics and search.

Nothing of ours is restarted except the killed worker. Each test ends with the same check: every
acknowledged event is in the log exactly once, every read model and the search index equal the
independent reference computed from that log, the tamper-evidence chain verifies, and no client got
an answer other than a 2xx or a 503 `unavailable`.

The services restarted are those `COHORTLINE_SERVICES_DIR` and the port variables name (the shared
ones under `make test`, which runs tests one at a time)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import requests
from sqlalchemy import Engine

from infra.database import create_database_engine
from infra.eventstore import open_event_store
from infra.services import manager
from projections.tracking import progress
from streams.log_reader import LogReader
from tests.processes import Command, serve, wait_until
from tests.stack_checks import assert_stack_equals_reference
from tests.steady_load import HISTORY_END, HISTORY_START, SteadyLoad

KEYS = "prod-key:producer,read-key:reader+auditor,admin-key:admin"
ADMIN = {"Authorization": "Bearer admin-key"}
AUDITOR = {"Authorization": "Bearer read-key"}
PARTITIONS = 4
CATCH_UP_S = 180
AFTER_FAULT_EVENTS = 300
"""Acknowledged after a service came back before the load stops: the stack works again under load."""


@dataclass
class Stack:
    env: dict[str, str]
    workdir: Path
    server: Command
    base: str
    relay: Command
    worker: Command
    engine: Engine

    @property
    def watched(self) -> tuple[Command, ...]:
        return self.server, self.relay, self.worker

    def applied(self) -> int:
        """The log position every partition of the analytics projection has applied."""
        with self.engine.connect() as conn:
            return progress(conn, "analytics", PARTITIONS).position


@contextmanager
def full_stack(env: dict[str, str], workdir: Path) -> Iterator[Stack]:
    env = dict(env, COHORTLINE_API_KEYS=KEYS)
    engine = create_database_engine(env["COHORTLINE_DATABASE_URL"], pool_size=2)
    server, base = serve(env, workdir)
    stack = Stack(
        env,
        workdir,
        server,
        base,
        Command(["relay"], env, workdir, "relay"),
        Command(["worker"], env, workdir, "worker"),
        engine,
    )
    try:
        yield stack
    finally:
        for command in (stack.worker, stack.relay, stack.server):
            command.stop()
        engine.dispose()


@contextmanager
def steady_load(stack: Stack) -> Iterator[SteadyLoad]:
    """The load, started once the stack projects: the faults strike a stack that was working. Its
    report is printed however the test ends."""
    load = SteadyLoad(stack.base, "prod-key", "read-key")
    try:
        with load:
            wait_until(lambda: stack.applied() > 0, 120, "the worker to apply the load", *stack.watched)
            yield load
    finally:
        print(load.report())


def restart(service: str, down_for_s: float) -> None:
    manager.down(print, [service])
    time.sleep(down_for_s)
    manager.up(print, [service])


def assert_survived(stack: Stack, load: SteadyLoad) -> None:
    """Stop the load; the stack must catch up and hold exactly what was acknowledged."""
    load.wait_for_more(AFTER_FAULT_EVENTS, 120, "appends after the fault", *stack.watched)
    load.stop()
    report = load.report()
    store = open_event_store(stack.engine)
    try:
        head = store.recorder.max_notification_id() or 0
        wait_until(lambda: stack.applied() >= head, CATCH_UP_S, "the read models to catch up", *stack.watched)
        everything = LogReader(store).read(0, 100_000)
    finally:
        store.close()
    ids = [e.event_id for e in everything]
    assert len(set(ids)) == len(ids) == load.sent, report
    assert set(ids) == set(load.acknowledged), report
    assert_stack_equals_reference(
        stack.engine,
        everything,
        stack.env["COHORTLINE_ELASTICSEARCH_URL"],
        stack.env["COHORTLINE_ELASTICSEARCH_INDEX"],
        PARTITIONS,
        HISTORY_START,
        HISTORY_END,
    )

    def searched() -> bool:
        response = requests.get(
            f"{stack.base}/v1/users/search", params={"size": 1}, headers=AUDITOR, timeout=30
        )
        return response.status_code == 200

    wait_until(searched, 60, "the user search to answer", *stack.watched)
    verified = requests.get(f"{stack.base}/v1/audit/verify", headers=AUDITOR, timeout=60)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True and verified.json()["events"] == len(ids), verified.json()
    assert all(c.alive() for c in stack.watched), [c.output() for c in stack.watched if not c.alive()]
    assert not load.failures(), report


def test_postgresql_restarted_under_load(full_stack_env, tmp_path):
    with full_stack(full_stack_env, tmp_path) as stack, steady_load(stack) as load:
        restart("postgresql", 3)
        assert_survived(stack, load)


def test_kafka_restarted_under_load(full_stack_env, tmp_path):
    with full_stack(full_stack_env, tmp_path) as stack, steady_load(stack) as load:
        restart("kafka", 3)
        assert_survived(stack, load)


def test_elasticsearch_down_for_30s_under_load(full_stack_env, tmp_path):
    """Meanwhile the worker, retrying a batch that Elasticsearch refuses, is told to stop: it stops
    at once, leaving the batch unacknowledged for the worker started in its place once
    Elasticsearch is back (a worker starting without it exits, saying which backend is missing)."""
    with full_stack(full_stack_env, tmp_path) as stack, steady_load(stack) as load:
        manager.down(print, ["elasticsearch"])
        outage_ends = time.monotonic() + 30
        wait_until(
            lambda: "backend unavailable, retrying" in stack.worker.log_path.read_text(errors="replace"),
            60,
            "the worker to wait for Elasticsearch",
            *stack.watched,
        )
        assert stack.worker.stop(signal.SIGTERM, timeout=20) == 0, stack.worker.output()
        time.sleep(max(outage_ends - time.monotonic(), 0))
        manager.up(print, ["elasticsearch"])
        stack.worker = Command(["worker"], stack.env, stack.workdir, "worker-2")
        assert_survived(stack, load)


WAITING_ON_THE_SWITCH = """
SELECT waiting.pid, rebuild.pid
FROM pg_stat_activity rebuild
JOIN pg_stat_activity waiting ON rebuild.pid = ANY(pg_blocking_pids(waiting.pid))
WHERE rebuild.datname = current_database()
  AND %(gate)s = ANY(pg_blocking_pids(rebuild.pid))
  AND waiting.query LIKE '%%FROM projection_tracking%%FOR UPDATE%%'
"""
"""The worker's batch waiting on the tracked positions that the rebuild's switch holds, while the
switch waits for the gate's reader to let go of a live table."""


def test_worker_killed_in_a_rebuild_switch(full_stack_env, tmp_path):
    """A reader transaction on a live table (the gate) holds the switch open where it has locked the
    live tracked positions and waits to swap the tables; the worker is killed while it waits on those
    positions, then the gate lets go. The rebuild switches, a new worker takes over, nothing is lost or
    counted twice."""
    with full_stack(full_stack_env, tmp_path) as stack, steady_load(stack) as load:
        wait_until(lambda: stack.applied() > 300, 120, "some history to rebuild", *stack.watched)
        dsn = stack.env["COHORTLINE_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        gate, monitor = psycopg2.connect(dsn), psycopg2.connect(dsn)
        monitor.autocommit = True
        try:
            with gate.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                gate_pid = cursor.fetchone()[0]
                cursor.execute("SELECT 1 FROM rm_users LIMIT 1")  # ACCESS SHARE until the transaction ends

            started = requests.post(
                f"{stack.base}/v1/admin/projections/analytics/rebuild", headers=ADMIN, timeout=30
            )
            assert started.status_code == 202, started.text

            def worker_waiting() -> tuple[int, int] | None:
                with monitor.cursor() as cursor:
                    cursor.execute(WAITING_ON_THE_SWITCH, {"gate": gate_pid})
                    return cursor.fetchone()

            wait_until(worker_waiting, 120, "the worker to wait on the rebuild's switch", *stack.watched)
            stack.worker.stop(signal.SIGKILL)
            gate.rollback()
            stack.worker = Command(["worker"], stack.env, stack.workdir, "worker-2")

            def rebuild_ended() -> dict | None:
                state = requests.get(
                    f"{stack.base}/v1/admin/projections/analytics", headers=ADMIN, timeout=30
                ).json()
                return state if state["state"] != "running" else None

            ended = wait_until(rebuild_ended, 120, "the rebuild to end", *stack.watched)
            assert ended["state"] == "switched", (ended, stack.server.output())
        finally:
            gate.close()
            monitor.close()
        assert_survived(stack, load)
