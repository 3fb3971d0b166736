"""Killing the worker and the relay (SIGKILL) in the middle of a stream and restarting them loses
and duplicates nothing: every read model ends equal to the batch recomputation."""

from __future__ import annotations

import signal
import threading
import time
from datetime import date

from domain.envelope import parse_envelope
from infra.database import create_database_engine
from infra.demo import demo_events
from infra.eventstore import open_event_store
from projections.tracking import progress
from streams.log_reader import LogReader
from tests.processes import Command, wait_until
from tests.stack_checks import assert_stack_equals_reference


def test_kill_and_restart_worker_and_relay_mid_stream(full_stack_env, tmp_path):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    raw = demo_events()
    relay = Command(["relay"], full_stack_env, tmp_path, "relay")
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    done = threading.Event()

    def produce() -> None:
        for start in range(0, len(raw), 150):
            store.record([parse_envelope(e) for e in raw[start : start + 150]])
            time.sleep(0.05)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        head_now = lambda: store.recorder.max_notification_id() or 0  # noqa: E731

        def applied() -> int:
            with engine.connect() as conn:
                return progress(conn, "analytics", 4).position

        wait_until(lambda: applied() > 500, 120, "the worker to start applying", relay, worker)
        worker.stop(signal.SIGKILL)
        worker = Command(["worker"], full_stack_env, tmp_path, "worker-2")
        wait_until(lambda: head_now() > 2500, 60, "more events")
        relay.stop(signal.SIGKILL)
        relay = Command(["relay"], full_stack_env, tmp_path, "relay-2")
        wait_until(lambda: applied() > 3000, 120, "the restarted pair to apply", relay, worker)
        worker.stop(signal.SIGKILL)
        relay.stop(signal.SIGKILL)
        relay = Command(["relay"], full_stack_env, tmp_path, "relay-3")
        worker = Command(["worker"], full_stack_env, tmp_path, "worker-3")
        producer.join(120)
        assert done.is_set()
        head = head_now()
        assert head == len(raw)
        wait_until(lambda: applied() >= head, 180, "the read models to catch up", relay, worker)

        everything = LogReader(store).read(0, 100_000)
        assert len({e.event_id for e in everything}) == len(raw)
        assert_stack_equals_reference(
            engine,
            everything,
            full_stack_env["COHORTLINE_ELASTICSEARCH_URL"],
            full_stack_env["COHORTLINE_ELASTICSEARCH_INDEX"],
            4,
            date(2025, 3, 1),
            date(2025, 5, 4),
        )
    finally:
        done.set()
        producer.join(60)
        for command in (worker, relay):
            command.stop()
        store.close()
        engine.dispose()
