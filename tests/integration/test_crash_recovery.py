"""Killing the worker and the relay (SIGKILL) in the middle of a stream and restarting them loses
and duplicates nothing: every read model ends equal to the batch recomputation."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace
from datetime import date

from elasticsearch import Elasticsearch
from sqlalchemy import select

from domain.envelope import parse_envelope
from infra.database import create_database_engine
from infra.demo import demo_events
from infra.eventstore import open_event_store
from projections.dead_letters import dead_letters
from projections.lifecycle import STATES
from projections.rfm import SEGMENT_NAMES, rfm_cuts, segment_boxes
from projections.search import ElasticsearchUsers, SqlUsers, UserQuery, present_user
from projections.tracking import progress
from streams.log_reader import LogReader
from tests.analytics_checks import assert_read_models_equal_reference
from tests.processes import Command, wait_until
from tests.properties import expected_users, user_documents


def ids(search, query: UserQuery) -> list[str]:
    """Every user id the search finds, page by page, in its order."""
    found, after = [], None
    while True:
        page = search.search(replace(query, after=after))
        found += [u["user_id"] for u in page.users]
        if page.next is None:
            return found
        after = page.next


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
        assert_read_models_equal_reference(engine, everything, date(2025, 3, 1), date(2025, 5, 4))
        with engine.connect() as conn:
            rows = user_documents(conn)
            assert conn.execute(select(dead_letters)).first() is None
        assert {user_id: present_user(row) for user_id, row in rows.items()} == expected_users(everything)
        with Elasticsearch(full_stack_env["COHORTLINE_ELASTICSEARCH_URL"]) as es:
            index = ElasticsearchUsers(es, full_stack_env["COHORTLINE_ELASTICSEARCH_INDEX"])
            es.indices.refresh(index=index.index)
            assert es.count(index=index.index)["count"] == len(rows)
            for user_id in list(rows)[:50]:
                assert index.get(user_id) == rows[user_id]
            with engine.connect() as conn:
                watermark = progress(conn, "analytics", 4).watermark
            sql = SqlUsers(engine)
            for state in STATES:
                query = UserQuery(lifecycle=state, watermark=watermark, size=100)
                assert ids(index, query) == ids(sql, query), state
            with engine.connect() as conn:
                cuts = rfm_cuts(conn)
            for name in SEGMENT_NAMES:
                query = UserQuery(segment=segment_boxes(name, cuts), size=100)
                assert ids(index, query) == ids(sql, query), name
    finally:
        done.set()
        producer.join(60)
        for command in (worker, relay):
            command.stop()
        store.close()
        engine.dispose()
