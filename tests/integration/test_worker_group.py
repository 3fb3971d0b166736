"""Several `cohortline worker` processes on one topic share its partitions through the Faust app's
consumer group: two, then three, each own some of the six partitions and together all of them, the
read models stay exact while events are appended, and a SIGKILLed worker's partitions pass to the
survivors with nothing lost or applied twice."""

from __future__ import annotations

import signal
import threading
import time
from datetime import date
from pathlib import Path

from domain.envelope import parse_envelope
from infra.database import create_database_engine
from infra.demo import demo_events
from infra.eventstore import open_event_store
from projections.tracking import progress
from streams.log_reader import LogReader
from tests.kafka_groups import describe
from tests.processes import Command, wait_until
from tests.stack_checks import assert_stack_equals_reference

PARTITIONS = 6
START, END = date(2025, 3, 1), date(2025, 5, 4)
"""The span of the demo events."""


class Producer:
    """Appends the demo events in three parts from a thread, each part only once allowed, so events
    arrive while two workers run, while a third joins, and while a killed one is replaced."""

    def __init__(self, store, raw: list[dict]):
        self.store = store
        third = len(raw) // 3
        self.parts = [raw[:third], raw[third : 2 * third], raw[2 * third :]]
        self.allowed = [threading.Event() for _ in self.parts]
        self.finished = [threading.Event() for _ in self.parts]
        self.stopping = False
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        for part, allowed, finished in zip(self.parts, self.allowed, self.finished):
            allowed.wait()
            for start in range(0, len(part), 150):
                if self.stopping:
                    return
                self.store.record([parse_envelope(e) for e in part[start : start + 150]])
                time.sleep(0.1)
            finished.set()

    def release(self, part: int) -> None:
        self.allowed[part].set()

    def stop(self) -> None:
        self.stopping = True
        for allowed in self.allowed:
            allowed.set()
        self.thread.join(60)


def test_workers_share_the_partitions_and_survive_one_killed(full_stack_env, tmp_path):
    env = {**full_stack_env, "COHORTLINE_KAFKA_PARTITIONS": str(PARTITIONS)}
    servers, topic = env["COHORTLINE_KAFKA_URL"].removeprefix("kafka://"), env["COHORTLINE_KAFKA_TOPIC"]
    engine = create_database_engine(env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    raw = demo_events()
    producer = Producer(store, raw)

    def start(name: str) -> Command:
        workdir = tmp_path / name  # each worker its own Faust data directory
        Path(workdir).mkdir()
        return Command(["worker"], env, workdir, name)

    def head() -> int:
        return store.recorder.max_notification_id() or 0

    def applied() -> int:
        with engine.connect() as conn:
            return progress(conn, "analytics", PARTITIONS).position

    def check(everything: list) -> None:
        assert_stack_equals_reference(
            engine,
            everything,
            env["COHORTLINE_ELASTICSEARCH_URL"],
            env["COHORTLINE_ELASTICSEARCH_INDEX"],
            PARTITIONS,
            START,
            END,
        )

    relay = Command(["relay"], env, tmp_path, "relay")
    workers = [start("worker-1"), start("worker-2")]
    producer.thread.start()
    producer.release(0)
    try:
        two = wait_until(
            lambda: (m := describe(servers, topic)).spread(2, PARTITIONS) and m,
            120,
            "two workers to share",
            *workers,
        )
        workers.append(start("worker-3"))
        producer.release(1)
        three = wait_until(
            lambda: (m := describe(servers, topic)).spread(3, PARTITIONS) and m,
            120,
            "three workers to share",
            *workers,
        )
        (joined,) = set(three.owned) - set(two.owned)

        wait_until(producer.finished[1].is_set, 120, "two thirds of the events", relay, *workers)
        two_thirds = head()
        assert two_thirds == len(producer.parts[0]) + len(producer.parts[1])
        wait_until(lambda: applied() >= two_thirds, 120, "three workers to catch up", relay, *workers)
        check(LogReader(store).read(0, 100_000))

        producer.release(2)
        wait_until(lambda: head() > two_thirds + 300, 60, "more events", relay, *workers)
        killed = workers.pop()  # worker-3, whose member is `joined`
        killed.stop(signal.SIGKILL)
        survivors = wait_until(
            lambda: (m := describe(servers, topic)).spread(2, PARTITIONS) and m,
            120,
            "the survivors to take over the killed worker's partitions",
            relay,
            *workers,
        )
        assert joined not in survivors.owned
        assert three.owned[joined]  # it had partitions to hand over

        wait_until(producer.finished[2].is_set, 120, "the last events", relay, *workers)
        assert head() == len(raw)
        wait_until(lambda: applied() >= len(raw), 120, "two workers to catch up", relay, *workers)
        everything = LogReader(store).read(0, 100_000)
        assert len({e.event_id for e in everything}) == len(raw)
        check(everything)
    finally:
        producer.stop()
        for command in (*workers, relay):
            command.stop()
        store.close()
        engine.dispose()
