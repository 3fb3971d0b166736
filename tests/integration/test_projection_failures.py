"""The projections' error policy on both storages: an event a projection rejects, an unreadable
message and a rejected document are dead-lettered and the stream moves on; a bug halts the
projection at its event, after the events before it, visibly in GET /v1/status, until a restart
applies it; `cohortline dead-letters list|retry` shows them and applies each exactly once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from domain.envelope import parse_envelope
from projections.analytics import AnalyticsProjection
from projections.dead_letters import DeadLetterRetry, dead_letters, listed
from projections.failures import DocumentRejected, InvalidEvent
from projections.halts import halts
from projections.records import EventRecord
from projections.runner import Delivery, ProjectionRunner
from projections.search import present_user
from projections.tracking import LOCAL_PARTITION, positions, tracking
from streams.local import LocalFollower
from streams.messages import batch_messages
from tests.analytics_checks import assert_read_models_equal_reference
from tests.properties import expected_users, user_documents

READER = {"Authorization": "Bearer read"}


def envelopes() -> list:
    out = []
    for n in range(24):
        user, day = f"u{n % 5}", n % 27 + 1
        context = {"country": "GB"} if n % 5 == 3 else {}
        out.append(_raw("SessionStarted", user, f"2011-02-{day:02d}T10:00:00Z", context))
        out.append(_raw("SceneVisited", user, f"2011-03-{day:02d}T10:00:00Z", {}, scene="social"))
        out.append(_raw("ToolUsed", user, f"2011-04-{day:02d}T10:00:00Z", {}, tool="check_in"))
        if n % 3 == 0:
            out.append(_raw("UserRegistered", f"r{n}", f"2011-01-{day:02d}T09:00:00Z", {}))
        at = f"2011-01-{day:02d}T10:00:00Z"
        out.append(_raw("OrderPlaced", user, at, {}, order_id=f"o{n}", amount=f"{n}.50", currency="EUR"))
        out.append(_raw("OrderPaid", user, at, {}, order_id=f"o{n}", amount=f"{n}.50"))
    return out


def _raw(type_: str, user_id: str, at: str, context: dict[str, str], **data: Any):
    return parse_envelope(
        {"type": type_, "user_id": user_id, "occurred_at": at, "data": data, "context": context}
    )


def recorded(system) -> list[EventRecord]:
    system.event_store.record(envelopes())
    return system.log_reader().read(0, 10_000)


class Failing(AnalyticsProjection):
    """The analytics projection, raising what `fail` returns for an event (a bug, or a rejection)."""

    def __init__(self, fail: Callable[[EventRecord], Exception | None]):
        super().__init__()
        self.fail = fail

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> dict[str, dict[str, Any]]:
        for event in events:
            error = self.fail(event)
            if error is not None:
                raise error
        return super().apply(conn, events)


def at_positions(error: Callable[[], Exception], *culprits: int) -> Callable[[EventRecord], Exception | None]:
    return lambda event: error() if event.position in culprits else None


class Counting:
    """Another projection, without tables: it only tracks its position."""

    name = "counting"
    tables = ()

    def apply(self, conn: Connection, events: Sequence[EventRecord]) -> dict[str, dict[str, Any]]:
        return {}


class RejectingSearch:
    """A search index that refuses the documents of one user, as Elasticsearch does a mapping error."""

    def __init__(self, user_id: str):
        self.user_id = user_id

    def index_rows(self, rows: Iterable[Mapping[str, Any]], version_type: str = "external") -> None:
        if any(row["user_id"] == self.user_id for row in rows):
            raise DocumentRejected(f"mapper_parsing_exception for {self.user_id}")


def follow(system, *runners: ProjectionRunner) -> None:
    LocalFollower(system.log_reader(), list(runners)).catch_up()


def parked(system) -> list[dict[str, Any]]:
    with system.engine.connect() as conn:
        rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id)).mappings().all()
    return [dict(r) for r in rows]


def user_rows(system) -> dict[str, dict[str, Any]]:
    """The user states of the read models, as the API presents them."""
    with system.engine.connect() as conn:
        return {user_id: present_user(row) for user_id, row in user_documents(conn).items()}


def local_position(system, projection: str = "analytics") -> int:
    with system.engine.connect() as conn:
        return positions(conn, projection).get(LOCAL_PARTITION, 0)


def event_at(system) -> Callable[[int], EventRecord]:
    return lambda position: system.log_reader().read(position - 1, 1)[0]


def naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def assert_read_models_hold(system, events: list[EventRecord]) -> None:
    assert user_rows(system) == expected_users(events)
    assert_read_models_equal_reference(system.engine, events)


def projection_status(client, name: str = "analytics") -> dict[str, Any]:
    response = client.get("/v1/status", headers=READER)
    assert response.status_code == 200
    return next(p for p in response.json["projections"] if p["name"] == name)


def test_an_event_the_projection_rejects_is_dead_lettered_and_the_stream_moves_on(system, client):
    events = recorded(system)
    culprit = next(e for e in events if e.type == "OrderPaid" and e.position > len(events) // 2)
    runner = ProjectionRunner(
        system.engine, Failing(at_positions(lambda: InvalidEvent("marked"), culprit.position))
    )
    follow(system, runner)

    assert not runner.halted
    assert local_position(system) == len(events)
    [letter] = parked(system)
    assert (letter["position"], letter["kind"], letter["reason"]) == (
        culprit.position,
        "invalid_event",
        "InvalidEvent: marked",
    )
    assert culprit.event_id in letter["payload"] and letter["retries"] == 0
    assert_read_models_hold(system, [e for e in events if e is not culprit])
    status = projection_status(client)
    assert status["state"] == "running" and status["halt"] is None and status["halts"] == []
    assert status["dead_letters"]["count"] == 1


def test_an_amount_beyond_what_the_read_models_hold_is_an_invalid_event(system):
    at = datetime(2011, 5, 1, tzinfo=UTC)

    def event(position: int, type_: str, **data: Any) -> EventRecord:
        return EventRecord(position, type_, 1, f"e{position}", "s", position, "big", at, at, {}, data)

    deliveries = [
        Delivery(
            LOCAL_PARTITION, 1, None, event(1, "OrderPlaced", order_id="o", amount=Decimal(1), currency="EUR")
        ),
        Delivery(LOCAL_PARTITION, 2, None, event(2, "OrderPaid", order_id="o", amount=Decimal("1e16"))),
        Delivery(LOCAL_PARTITION, 3, None, event(3, "OrderPaid", order_id="o", amount=Decimal(1))),
    ]
    assert system.runners[0].process(deliveries) == 2
    [letter] = parked(system)
    assert (letter["position"], letter["kind"]) == (2, "invalid_event")
    assert "beyond what the read models hold" in letter["reason"]
    assert user_rows(system)["big"]["net_revenue"] == {"EUR": "1.00"}
    assert local_position(system) == 3


@pytest.mark.parametrize(
    "bug",
    [lambda: KeyError("scene"), lambda: IntegrityError("INSERT ...", {}, Exception("duplicate key"))],
    ids=["KeyError", "IntegrityError"],
)
def test_a_bug_halts_the_projection_at_its_event_after_the_events_before_it(system, client, caplog, bug):
    events = recorded(system)
    culprit = events[len(events) // 2]
    buggy = ProjectionRunner(system.engine, Failing(at_positions(bug, culprit.position)))
    other = ProjectionRunner(system.engine, Counting())
    with caplog.at_level(logging.ERROR, logger="projections.runner"):
        follow(system, buggy, other)

    assert buggy.halted and local_position(system) == culprit.position - 1
    assert local_position(system, "counting") == len(events), "other projections continue"
    assert parked(system) == [], "nothing is dead-lettered"
    assert_read_models_hold(system, events[: culprit.position - 1])
    [logged] = [r for r in caplog.records if r.name == "projections.runner" and r.levelno == logging.ERROR]
    assert logged.exc_info is not None and "HALTED" in logged.getMessage()

    with system.engine.connect() as conn:
        [kept] = conn.execute(select(halts)).mappings().all()
    assert (kept["projection"], kept["partition"], kept["position"]) == (
        "analytics",
        LOCAL_PARTITION,
        culprit.position,
    )
    status = projection_status(client)
    assert status["state"] == "stopped"
    halt = status["halt"]
    assert (halt["partition"], halt["position"]) == (LOCAL_PARTITION, culprit.position)
    assert type(bug()).__name__ in halt["error"] and halt["since"].endswith("Z")
    assert status["halts"] == [halt]

    system.event_store.record([_raw("SessionStarted", "late", "2011-02-01T10:00:00Z", {})])
    follow(system, buggy)  # skipped until the process restarts
    assert local_position(system) == culprit.position - 1

    again = ProjectionRunner(system.engine, Failing(at_positions(bug, culprit.position)))
    follow(system, again)  # a restart tries the culprit again, and halts again
    assert again.halted and projection_status(client)["halt"]["since"] == halt["since"]

    follow(system, ProjectionRunner(system.engine, AnalyticsProjection()))  # the fix, then a restart
    everything = system.log_reader().read(0, 10_000)
    assert local_position(system) == len(everything)
    assert_read_models_hold(system, everything)
    status = projection_status(client)
    assert status["state"] == "running" and status["halt"] is None


def test_status_counts_dead_letters_by_kind(system, client):
    events = recorded(system)
    invalid = next(e for e in events if e.user_id == "u1" and e.type == "OrderPaid")
    runner = ProjectionRunner(
        system.engine,
        Failing(at_positions(lambda: InvalidEvent("marked"), invalid.position)),
        search=RejectingSearch("u2"),
    )
    follow(system, runner)
    runner.process([Delivery(0, 0, 7, None, "\x00 not a message", "unreadable: not JSON")])

    rejected = [e for e in events if e.user_id == "u2"]
    assert {(r["position"], r["kind"]) for r in parked(system)} == {
        (0, "unreadable_message"),
        (invalid.position, "invalid_event"),
        *((e.position, "document_rejected") for e in rejected),
    }
    status = projection_status(client)
    assert status["state"] == "running"
    oldest = min(r["failed_at"] for r in parked(system))
    assert status["dead_letters"] == {
        "count": 2 + len(rejected),
        "oldest_failed_at": oldest.isoformat() + "Z",
        "by_kind": {"unreadable_message": 1, "invalid_event": 1, "document_rejected": len(rejected)},
    }


def cohortline(system, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_DATABASE_URL"] = system.settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], env=env, capture_output=True, timeout=120, check=False
    )


def lines(done: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def test_dead_letters_are_listed_and_retried_exactly_once(system, client):
    events = recorded(system)
    latest = max(events, key=lambda e: e.occurred_at)
    some = [e for e in events if e.type in ("OrderPaid", "SceneVisited")][3:9:2]
    culprits = sorted({e.position: e for e in [*some, latest]}.values(), key=lambda e: e.position)
    failing = Failing(at_positions(lambda: InvalidEvent("marked"), *(e.position for e in culprits)))
    follow(system, ProjectionRunner(system.engine, failing))
    with system.engine.connect() as conn:
        assert conn.execute(select(tracking.c.watermark)).scalar() < naive(latest.occurred_at)

    listed = cohortline(system, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    shown = lines(listed)
    assert [(s["projection"], s["partition"], s["position"], s["kind"]) for s in shown] == [
        ("analytics", LOCAL_PARTITION, e.position, "invalid_event") for e in culprits
    ]
    assert all(s["reason"] == "InvalidEvent: marked" and s["failed_at"].endswith("Z") for s in shown)
    assert lines(cohortline(system, "dead-letters", "list", "--projection", "analytics")) == shown
    assert cohortline(system, "dead-letters", "list", "--projection", "nope").returncode == 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_DATABASE_URL"] = system.settings.database_url
    command = [sys.executable, "-m", "infra.cli", "dead-letters", "retry"]
    concurrent = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in concurrent]
    assert [p.returncode for p in concurrent] == [0, 0], outputs
    results = [json.loads(line) for out, _ in outputs for line in out.decode().splitlines()]
    applied = sorted(r["id"] for r in results if r["outcome"] == "applied")
    assert applied == sorted(s["id"] for s in shown), results

    again = cohortline(system, "dead-letters", "retry", *(str(s["id"]) for s in shown))
    assert again.returncode == 0 and {r["outcome"] for r in lines(again)} == {"gone"}
    assert parked(system) == []
    assert local_position(system) == len(events), "tracked positions do not move"
    assert_read_models_hold(system, events)
    with system.engine.connect() as conn:
        assert conn.execute(select(tracking.c.watermark)).scalar() == naive(latest.occurred_at)
    assert projection_status(client)["dead_letters"]["count"] == 0


def test_one_dead_letter_retried_twice_at_once_is_applied_once(system):
    events = recorded(system)
    culprit = events[7]
    follow(
        system,
        ProjectionRunner(system.engine, Failing(at_positions(lambda: InvalidEvent("x"), culprit.position))),
    )
    with system.engine.connect() as conn:
        [letter] = listed(conn)
    retry = DeadLetterRetry(system.engine, system.runners, event_at(system), lambda _: [])
    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(r.outcome for r in pool.map(retry.retry, [letter, letter]))
    assert outcomes == ["applied", "gone"]
    assert retry.retry(letter).outcome == "gone"
    assert parked(system) == []
    assert_read_models_hold(system, events)


def test_a_retry_that_fails_again_keeps_the_dead_letter_and_counts_it(system):
    events = recorded(system)
    culprit = events[5]
    rejecting = Failing(at_positions(lambda: InvalidEvent("still wrong"), culprit.position))
    follow(system, ProjectionRunner(system.engine, rejecting))
    [letter] = parked(system)

    def event_at(position: int) -> EventRecord:
        return system.log_reader().read(position - 1, 1)[0]

    still = DeadLetterRetry(
        system.engine, [ProjectionRunner(system.engine, rejecting)], event_at, lambda _: []
    )
    assert [r.outcome for r in still.run()] == ["failed"]
    [kept] = parked(system)
    assert (kept["id"], kept["retries"], kept["kind"]) == (letter["id"], 1, "invalid_event")
    assert kept["reason"] == "InvalidEvent: still wrong" and kept["last_retried_at"] is not None
    assert_read_models_hold(system, [e for e in events if e is not culprit])

    with system.engine.begin() as conn:  # a dead letter whose event is not in the log
        conn.execute(
            dead_letters.insert().values(
                projection="analytics", partition=LOCAL_PARTITION, position=len(events) + 50,
                kind="invalid_event", reason="lost", failed_at=datetime(2020, 1, 1),
            )
        )  # fmt: skip
    done = cohortline(system, "dead-letters", "retry")
    assert done.returncode == 1, done.stderr
    outcomes = {r["id"]: r for r in lines(done)}
    assert outcomes[letter["id"]]["outcome"] == "applied"
    [lost] = [r for r in outcomes.values() if r["outcome"] == "failed"]
    assert "no event at position" in lost["detail"]
    assert [(r["position"], r["retries"]) for r in parked(system)] == [(len(events) + 50, 1)]
    assert_read_models_hold(system, events)


def test_an_unreadable_message_is_decoded_again_on_retry(system):
    events = recorded(system)
    follow(system, *system.runners)
    at = datetime(2011, 5, 2, tzinfo=UTC)
    extra = [
        EventRecord(len(events) + n, "SessionStarted", 1, f"x{n}", "s", n, f"x{n}", at, at, {}, {})
        for n in (1, 2)
    ]
    [(_, message)] = [(p, m) for p, m in batch_messages(extra, 1)]
    runner = system.runners[0]
    runner.process([Delivery(0, 0, 11, None, message.decode(), "unreadable: a decoder bug, since fixed")])
    runner.process([Delivery(0, 0, 12, None, '{"events": [', "unreadable: truncated")])
    assert [r["kind"] for r in parked(system)] == ["unreadable_message"] * 2

    done = cohortline(system, "dead-letters", "retry")
    assert done.returncode == 1
    assert [r["outcome"] for r in lines(done)] == ["applied", "failed"]
    assert [r["payload"] for r in parked(system)] == ['{"events": [']
    assert_read_models_hold(system, [*events, *extra])
