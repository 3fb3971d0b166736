"""Blue/green rebuilds and verification of the read models, on both storages: a rebuild that runs
while events are appended and projected ends equal to the history; verify finds what differs."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from domain.envelope import parse_envelope
from infra.demo import demo_events
from projections.admin import RebuildRunning
from projections.analytics import AnalyticsProjection
from projections.dead_letters import dead_letters
from projections.failures import InvalidEvent
from projections.runner import ProjectionRunner
from streams.local import LocalFollower
from streams.log_reader import LogReader
from streams.rebuild import ScratchCopy, rebuild, verify
from tests.analytics_checks import assert_read_models_equal_reference

START, END = date(2025, 3, 1), date(2025, 5, 4)


def record(system, raw: list[dict]) -> None:
    for start in range(0, len(raw), 500):
        system.event_store.record([parse_envelope(e) for e in raw[start : start + 500]])


def test_verify_passes_then_names_the_row_that_differs(system):
    raw = demo_events()
    record(system, raw[:3000])
    reader = LogReader(system.event_store)
    projection = system.runners[0].projection
    LocalFollower(reader, system.runners).catch_up()
    position, checks = verify(system.engine, reader, projection)
    assert position == reader.head()
    assert [c for c in checks if not c.ok] == []
    assert {c.table for c in checks} >= {"rm_users", "rm_cohort_sizes"}
    with system.engine.begin() as conn:
        user = conn.execute(text("SELECT user_id FROM rm_users ORDER BY user_id LIMIT 1")).scalar()
        conn.execute(text("UPDATE rm_users SET orders = orders + 1 WHERE user_id = :u"), {"u": user})
    _, checks = verify(system.engine, reader, projection)
    failed = [c for c in checks if not c.ok]
    assert [c.table for c in failed] == ["rm_users"]
    (difference,) = failed[0].differences
    assert difference["key"] == {"user_id": user}
    assert difference["live"]["orders"] == difference["rebuilt"]["orders"] + 1


def test_a_rebuild_during_appends_ends_equal_to_the_history(system):
    raw = demo_events()
    record(system, raw[:2000])
    reader = LogReader(system.event_store)
    projection = system.runners[0].projection
    follower = LocalFollower(reader, system.runners, batch_size=200)
    follower.catch_up()
    with system.engine.begin() as conn:  # a damaged live read model that the rebuild must repair
        conn.execute(text("UPDATE rm_cohort_sizes SET users = users + 5"))

    appending = threading.Thread(target=record, args=(system, raw[2000:]))
    follower.start(poll_interval=0.01)
    appending.start()
    try:
        position = rebuild(system.engine, reader, projection)
    finally:
        appending.join()
        follower.stop()
    assert position >= 2000
    LocalFollower(reader, system.runners).catch_up()
    everything = reader.read(0, 100_000)
    assert len(everything) == len(raw)
    assert_read_models_equal_reference(system.engine, everything, START, END)
    assert all(c.ok for c in verify(system.engine, reader, projection)[1])


def test_one_scratch_copy_at_a_time(system):

    record(system, demo_events()[:100])
    reader = LogReader(system.event_store)
    projection = system.runners[0].projection
    first = ScratchCopy(system.engine, reader, projection)
    try:
        with pytest.raises(RebuildRunning):
            ScratchCopy(system.engine, reader, projection)
    finally:
        first.close()
    ScratchCopy(system.engine, reader, projection).close()  # free again


class RejectingLargeOrders(AnalyticsProjection):
    """The analytics projection, rejecting as invalid the orders placed above 150."""

    def apply(self, conn, events):
        for event in events:
            if event.type == "OrderPlaced" and Decimal(event.data["amount"]) > 150:
                raise InvalidEvent(f"order {event.data['order_id']} is too large for this test")
        return super().apply(conn, events)


def test_a_rebuild_leaves_out_what_the_live_projection_dead_lettered(system):
    record(system, demo_events()[:400])  # every batch with a large order is applied event by event
    reader = LogReader(system.event_store)
    runner = ProjectionRunner(system.engine, RejectingLargeOrders())
    LocalFollower(reader, [runner]).catch_up()
    with system.engine.connect() as conn:
        parked = conn.execute(select(func.count()).select_from(dead_letters)).scalar()
    assert parked > 0

    position, checks = verify(system.engine, reader, runner.projection)
    assert position == reader.head()
    assert [c.table for c in checks if not c.ok] == []
    assert rebuild(system.engine, reader, runner.projection) == reader.head()
