"""Projection scaling: events/s that 1, 2 and 3 `cohortline worker` processes apply together from a
topic of 6 partitions into the PostgreSQL read models and Elasticsearch, beside a bare aiokafka
consumer in a consumer group of its own reading and decoding every message of the same topic.

    eval "$(cohortline services env)"; .venv/bin/python bench/scaling.py [--events 100000]

Uses the running services (`cohortline services up`): the UCI Online Retail invoices are recorded
in a fresh PostgreSQL event store and `cohortline relay` publishes them to a fresh topic for each
run (each topic has its consumer group, streams.worker.group_id), which a fresh read-model
database and index receive.

Two ways to start: with the backlog already in the topic when the workers start (the first
worker takes batches of every partition before the others join, and keeps applying them after
the group has spread), and with the workers spread over the partitions before `cohortline relay`
fills the topic (workers that run all the time, as in production).

events/s counts from the workers' first applied batch (Faust's start-up is not projection work,
as in bench/projection.py) until every projection's tracked position reaches the head: the events
still unapplied at the start over that time. All the workers are launched at once; how much of
the log was left when the group had spread the partitions over all of them is printed beside the
CPU figures. The bare consumer counts from its first fetched message. Wall seconds run from
launching the processes. While the workers apply, the CPU of the workers, of their database's
backends, of Elasticsearch and Kafka and of the whole machine is read from /proc, and the backends
are sampled for what they do: run a statement, wait on a row lock, or sit in an open transaction
while the worker computes or indexes."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import online_retail_events  # noqa: E402
from bench.projection import started_applying  # noqa: E402
from bench.services import require_env  # noqa: E402
from domain.envelope import parse_envelope  # noqa: E402
from infra.audit import SqlAuditTrail  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from infra.eventstore import open_event_store, stored_events_table  # noqa: E402
from projections.tracking import progress, tracking  # noqa: E402
from streams.log_reader import LogReader  # noqa: E402
from streams.messages import partition_of, to_deliveries  # noqa: E402
from streams.relay import ensure_topic, relay_positions  # noqa: E402
from tests.kafka_groups import describe  # noqa: E402
from tests.processes import Command, wait_until  # noqa: E402
from tests.services import create_database, delete_index, drop_database, migrate  # noqa: E402

PARTITIONS = 6
WORKER_COUNTS = (1, 2, 3)
TICK_S = 0.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRITTEN_TABLE = re.compile(r'^\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)', re.IGNORECASE)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def service_pids(name: str) -> list[int]:
    """The processes of a service that `cohortline services up` started from this checkout."""
    marker = f"{ROOT}/var/services/{name}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def admin_dsn(url: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg2://", "postgresql://"))
    return urlunsplit(parts._replace(path="/postgres"))


@dataclass
class Usage:
    """What a run used between its start (`begin`) and its end (`end`)."""

    seconds: float = 0.0
    workers: list[float] = field(default_factory=list)
    postgres: float = 0.0
    elasticsearch: float = 0.0
    kafka: float = 0.0
    machine: float = 0.0
    backend_states: Counter[str] = field(default_factory=Counter)
    lock_waits: Counter[str] = field(default_factory=Counter)
    """The tables whose rows the backends waited for, by samples."""
    left_when_spread: float = 0.0
    """The share of the events still to apply when the group had spread over all the workers."""


class Monitor:
    """Samples, from a thread, the read-model database's backends (their CPU and whether they run a
    statement, wait on a lock or hold a transaction open between statements); reads the other
    processes' CPU at the ends."""

    def __init__(self, database_url: str, worker_pids: list[int]):
        self.database = urlsplit(database_url).path.strip("/")
        self.conn = psycopg2.connect(admin_dsn(database_url))
        self.conn.autocommit = True
        self.worker_pids = worker_pids
        self.services = {name: service_pids(name) for name in ("elasticsearch", "kafka")}
        self.backends: dict[int, tuple[float, float]] = {}
        self.usage = Usage()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def totals(self) -> tuple[list[float], dict[str, float], tuple[int, int]]:
        services = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.services.items()}
        return [cpu_seconds(p) for p in self.worker_pids], services, machine_ticks()

    def begin(self) -> None:
        self.started = time.perf_counter()
        self.at_start = self.totals()
        self.sample()
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.wait(TICK_S):
            self.sample()

    def sample(self) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, wait_event_type, query FROM pg_stat_activity WHERE datname = %s",
                (self.database,),
            )
            for pid, state, wait, query in cursor.fetchall():
                used = cpu_seconds(pid)
                first, _ = self.backends.get(pid, (used, used))
                self.backends[pid] = (first, used)
                if wait == "Lock":
                    self.usage.backend_states["waiting on a lock"] += 1
                    written = WRITTEN_TABLE.search(query or "")
                    self.usage.lock_waits[written.group(1) if written else (query or "")[:40]] += 1
                elif state in ("active", "idle in transaction"):
                    self.usage.backend_states[state] += 1

    def end(self) -> Usage:
        self.stopping.set()
        self.thread.join()
        self.sample()
        workers, services, (busy, total) = self.totals()
        start_workers, start_services, (start_busy, start_total) = self.at_start
        usage = self.usage
        usage.seconds = time.perf_counter() - self.started
        usage.workers = [b - a for a, b in zip(start_workers, workers)]
        usage.postgres = sum(last - first for first, last in self.backends.values())
        usage.elasticsearch = services["elasticsearch"] - start_services["elasticsearch"]
        usage.kafka = services["kafka"] - start_services["kafka"]
        usage.machine = (busy - start_busy) / (total - start_total) * (os.cpu_count() or 1) * usage.seconds
        self.conn.close()
        return usage


@dataclass(frozen=True)
class Run:
    mode: str
    rate: float
    wall: float
    usage: Usage | None = None


def preload(url: str, count: int) -> tuple[int, dict[int, list[int]]]:
    """Record the first `count` Online Retail events in the event store at `url`; returns the head
    and each partition's event positions, in order."""
    engine = create_database_engine(url, pool_size=2)
    store = open_event_store(engine)
    try:
        raw = list(islice(online_retail_events(), count))
        for start in range(0, len(raw), 1000):
            store.record([parse_envelope(e) for e in raw[start : start + 1000]])
        reader = LogReader(store, SqlAuditTrail(engine, store, stored_events_table(store)).sealed_log)
        by_partition: dict[int, list[int]] = defaultdict(list)
        after = 0
        while records := reader.read(after, 10_000):
            for record in records:
                by_partition[partition_of(record, PARTITIONS)].append(record.position)
            after = records[-1].position
        return after, by_partition
    finally:
        store.close()
        engine.dispose()


def relay(store_url: str, topic: str, head: int, workdir: Path) -> float:
    """Publish the whole store to `topic` with `cohortline relay`; returns the seconds it took."""
    env = {
        **os.environ,
        "COHORTLINE_DATABASE_URL": store_url,
        "COHORTLINE_KAFKA_TOPIC": topic,
        "COHORTLINE_KAFKA_PARTITIONS": str(PARTITIONS),
    }
    engine = create_database_engine(store_url, pool_size=1)
    started = time.perf_counter()
    command = Command(["relay"], env, workdir, f"relay-{topic}")
    try:

        def published() -> bool:
            with engine.connect() as conn:
                query = select(relay_positions.c.position).where(relay_positions.c.topic == topic)
                return (conn.execute(query).scalar() or 0) >= head

        wait_until(published, 1800, f"the relay to publish to {topic}", command)
        return time.perf_counter() - started
    finally:
        command.stop()
        engine.dispose()


def lowest_position(engine: Engine) -> int:
    """The lowest tracked position over every projection (0 before any applied anything)."""
    with engine.connect() as conn:
        names = conn.execute(select(tracking.c.projection).distinct()).scalars().all()
        return min((progress(conn, name, PARTITIONS).position for name in names), default=0)


def unapplied(engine: Engine, by_partition: dict[int, list[int]]) -> int:
    """How many events the projections have still to apply, from their tracked positions."""
    with engine.connect() as conn:
        rows = conn.execute(select(tracking.c.projection, tracking.c.partition, tracking.c.position)).all()
    names = {row.projection for row in rows} or {"analytics"}
    tracked = {(row.projection, row.partition): row.position for row in rows}
    return max(
        sum(
            len(positions) - bisect.bisect_right(positions, tracked.get((name, partition), 0))
            for partition, positions in by_partition.items()
        )
        for name in names
    )


def run_workers(
    count: int,
    topic: str,
    head: int,
    by_partition: dict[int, list[int]],
    workdir: Path,
    publish: Callable[[], object] | None = None,
) -> Run:
    """`count` workers on `topic` into a fresh read-model database and index; with `publish`, the
    topic is empty until the workers have spread its partitions, then `publish` fills it while
    they apply (the steady state of workers that run all the time), else it holds the backlog
    before they start."""
    base = os.environ["COHORTLINE_DATABASE_URL"]
    servers = os.environ["COHORTLINE_KAFKA_URL"].removeprefix("kafka://")
    url = create_database(base)
    migrate(url)
    index = f"bench-scaling-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "COHORTLINE_DATABASE_URL": url,
        "COHORTLINE_KAFKA_TOPIC": topic,
        "COHORTLINE_ELASTICSEARCH_INDEX": index,
        "COHORTLINE_KAFKA_PARTITIONS": str(PARTITIONS),
    }
    engine = create_database_engine(url, pool_size=1)
    workers: list[Command] = []
    try:
        launched = time.perf_counter()
        for n in range(count):
            directory = workdir / f"{topic}-worker-{n + 1}"  # each worker its own Faust data directory
            directory.mkdir()
            workers.append(Command(["worker"], env, directory, "worker"))
        publisher = None
        if publish is not None:
            wait_until(
                lambda: describe(servers, topic).spread(count, PARTITIONS),
                300,
                "the workers to spread",
                *workers,
            )
            publisher = threading.Thread(target=publish)
            publisher.start()
        wait_until(lambda: started_applying(engine), 600, "the workers' first batch", *workers)
        started, remaining = time.perf_counter(), unapplied(engine, by_partition)
        left: list[int] = []

        def caught_up() -> bool:
            if not left and describe(servers, topic).spread(count, PARTITIONS):
                left.append(unapplied(engine, by_partition))
            return lowest_position(engine) >= head

        monitor = Monitor(url, [w.process.pid for w in workers])
        monitor.begin()
        try:
            wait_until(caught_up, 3600, "the workers to apply the topic", *workers)
        finally:
            usage = monitor.end()
        finished = time.perf_counter()
        if publisher is not None:
            publisher.join()
        usage.left_when_spread = left[0] / head if left else 0.0
        rate = remaining / (finished - started)
        mode = f"{count} worker{'s' if count > 1 else ''}" + (", spread first" if publish else "")
        return Run(mode, rate, finished - launched, usage)
    finally:
        for worker in workers:
            worker.stop()
        engine.dispose()
        drop_database(url)
        delete_index(os.environ["COHORTLINE_ELASTICSEARCH_URL"], index)


async def bare_consume(servers: str, topic: str) -> Run:
    """A plain aiokafka consumer, joining a consumer group of its own, reads and decodes every
    message of the topic into deliveries without projecting them."""
    launched = time.perf_counter()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"bench-scaling-bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        started, events = None, 0
        ends: dict = {}
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if batch and started is None:
                started = time.perf_counter()
            for tp, messages in batch.items():
                for m in messages:
                    events += sum(1 for d in to_deliveries(tp.partition, m.offset, m.value) if d.event)
            assigned = consumer.assignment()
            if len(assigned) == PARTITIONS:
                ends = ends or await consumer.end_offsets(list(assigned))
                if all([await consumer.position(tp) >= ends[tp] for tp in assigned]):
                    break
        finished = time.perf_counter()
    finally:
        await consumer.stop()
    return Run(
        "bare aiokafka consumer (group)", events / (finished - (started or launched)), finished - launched
    )


async def delete_topics(servers: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to preload (default 100,000)")
    args = parser.parse_args()
    require_env()
    servers = os.environ["COHORTLINE_KAFKA_URL"].removeprefix("kafka://")
    workdir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    store_url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    topics: list[str] = []
    runs: list[Run] = []
    relay_seconds: list[float] = []
    try:
        migrate(store_url)
        head, by_partition = preload(store_url, args.events)
        for count in WORKER_COUNTS:
            topics.append(f"bench.scaling.{uuid.uuid4().hex[:8]}")
            relay_seconds.append(relay(store_url, topics[-1], head, workdir))
            if count == WORKER_COUNTS[0]:
                runs.append(asyncio.run(bare_consume(servers, topics[-1])))
            runs.append(run_workers(count, topics[-1], head, by_partition, workdir))
        for count in WORKER_COUNTS:
            topic = f"bench.scaling.{uuid.uuid4().hex[:8]}"
            topics.append(topic)
            asyncio.run(ensure_topic(servers, topic, PARTITIONS))
            fill = partial(relay, store_url, topic, head, workdir)
            runs.append(run_workers(count, topic, head, by_partition, workdir, publish=fill))
    finally:
        drop_database(store_url)
        if topics:
            asyncio.run(delete_topics(servers, topics))
    shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"{head:,} Online Retail events on {PARTITIONS} partitions, {os.cpu_count()} cores; "
        f"`cohortline relay` published them in {min(relay_seconds):.1f}-{max(relay_seconds):.1f} s "
        "(with its start-up)"
    )
    bare = runs[0].rate
    print(f"{'mode':<32} {'events/s':>10} {'x bare':>8} {'wall s':>8}")
    for run in runs:
        print(f"{run.mode:<32} {run.rate:>10,.0f} {run.rate / bare:>8.3f} {run.wall:>8.1f}")
    print()
    print("CPU in cores (CPU seconds / seconds) while the workers applied, and the read-model")
    print("database's backends sampled every 0.25 s (share of backend samples):")
    print(
        f"{'mode':<24} {'workers (each)':<20} {'postgres':>8} {'elastic':>8} {'kafka':>6} {'machine':>8}"
        f"  {'running':>8} {'in txn':>8} {'lock wait':>9}  {'left when spread':>16}"
    )
    for run in runs[1:]:
        u = run.usage
        assert u is not None
        each = " ".join(f"{w / u.seconds:.2f}" for w in u.workers)
        states = u.backend_states
        sampled = sum(states.values()) or 1
        print(
            f"{run.mode:<24} {each:<20} {u.postgres / u.seconds:>8.2f} {u.elasticsearch / u.seconds:>8.2f}"
            f" {u.kafka / u.seconds:>6.2f} {u.machine / u.seconds:>8.2f}"
            f"  {states['active'] / sampled:>8.0%} {states['idle in transaction'] / sampled:>8.0%}"
            f" {states['waiting on a lock'] / sampled:>9.0%}  {u.left_when_spread:>16.0%}"
        )
    for run in runs[1:]:
        assert run.usage is not None
        waits = run.usage.lock_waits
        if waits:
            top = ", ".join(f"{name} {n / sum(waits.values()):.0%}" for name, n in waits.most_common(5))
            print(f"{run.mode}: lock waits were on {top}")


if __name__ == "__main__":
    main()
