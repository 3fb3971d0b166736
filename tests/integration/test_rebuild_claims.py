"""Starting a rebuild claims it in the database, on both storages: of rebuilds started at once exactly
one runs, a running one is never overwritten, and the command line refuses while one runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.envelope import parse_envelope
from infra.demo import demo_events
from infra.rebuilds import STALE_AFTER, rebuilds
from projections.admin import RebuildRunning
from tests.integration.test_operator_cli import cohortline


def history(system) -> None:
    system.event_store.record([parse_envelope(e) for e in demo_events()[:300]])


def another_rebuild(system, reported_ago: timedelta) -> datetime:
    """The row of a rebuild that another process is running, and last reported `reported_ago`."""
    now = datetime.now(UTC).replace(tzinfo=None)
    started = now - reported_ago - timedelta(seconds=1)
    system.rebuilds  # noqa: B018 - without migrations, this makes its table
    with system.engine.begin() as conn:
        conn.execute(
            rebuilds.insert().values(
                projection="analytics",
                state="running",
                position=7,
                target=300,
                events_per_s=1.0,
                started_at=started,
                updated_at=now - reported_ago,
            )
        )
    return started


def row(system) -> dict:
    with system.engine.connect() as conn:
        return dict(conn.execute(select(rebuilds)).mappings().one())


def test_of_rebuilds_started_at_once_exactly_one_runs(system):
    history(system)
    racers = 6
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    all_refused = threading.Event()
    seen_while_running: list[dict] = []

    def progress(_: object) -> None:
        """The winner, mid-rebuild, waits for every other start to be refused."""
        all_refused.wait(60)
        seen_while_running.append(system.rebuilds.status("analytics"))

    def start() -> None:
        barrier.wait()
        try:
            system.rebuilds.run("analytics", progress=progress)
            outcomes.append("switched")
        except RebuildRunning as e:
            outcomes.append(f"refused: {e}")
            if len(outcomes) == racers - 1:
                all_refused.set()

    threads = [threading.Thread(target=start) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen_while_running[0]["state"] == "running" and seen_while_running[0]["error"] is None
    refused = "refused: a rebuild of 'analytics' is already under way"
    assert sorted(outcomes) == [refused] * (racers - 1) + ["switched"]
    status = system.rebuilds.status("analytics")
    assert status["state"] == "switched" and status["error"] is None, status


def test_a_running_rebuild_is_not_overwritten_and_a_stale_one_is_taken_over(system):
    history(system)
    started = another_rebuild(system, reported_ago=timedelta(seconds=5))
    before = row(system)
    with pytest.raises(RebuildRunning):
        system.rebuilds.start("analytics")
    with pytest.raises(RebuildRunning):
        system.rebuilds.run("analytics")
    assert row(system) == before

    with system.engine.begin() as conn:
        conn.execute(rebuilds.update().values(updated_at=started - STALE_AFTER))
    assert system.rebuilds.status("analytics")["state"] == "abandoned"
    assert system.rebuilds.run("analytics") == 300
    assert row(system)["state"] == "switched" and row(system)["started_at"] > started


def test_the_command_line_refuses_while_a_rebuild_runs(system):
    history(system)
    another_rebuild(system, reported_ago=timedelta(seconds=5))
    before = row(system)
    refused = cohortline(system, "rebuild", "analytics")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.decode().strip().splitlines()[-1] == (
        "cohortline: not rebuilding 'analytics': a rebuild of 'analytics' is already under way; "
        "try again once it has finished"
    )
    assert refused.stdout == b""
    assert row(system) == before
