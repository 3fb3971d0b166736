"""Projection throughput: events/s that one `cohortline worker` (Faust) applies from Kafka into the
PostgreSQL read models and Elasticsearch, beside a bare aiokafka consumer reading the same topic in
the same run.

    eval "$(cohortline services env)"; .venv/bin/python bench/projection.py [--events 200000]

Uses the running services (`cohortline services up`), a fresh database, topic and index. The events
are the UCI Online Retail invoices (sessions, product views, orders, payments) as the relay would
publish them: keyed by user, with positions, and a watermark on every partition at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import online_retail_events  # noqa: E402
from bench.services import require_env  # noqa: E402
from bench.sizes import read_model_size, size_line  # noqa: E402
from domain.envelope import parse_envelope  # noqa: E402
from domain.model import stream_id  # noqa: E402
from infra import migrations  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from projections.records import EventRecord  # noqa: E402
from projections.tracking import progress, tracking  # noqa: E402
from streams.messages import batch_messages  # noqa: E402
from streams.relay import ensure_topic  # noqa: E402
from tests.processes import Command, wait_until  # noqa: E402
from tests.services import create_database, delete_index, drop_database  # noqa: E402

PARTITIONS = 4
GOAL = 10_000
RELAY_BATCH = 5000
"""Events per relay batch, as `cohortline relay` reads them (streams.relay)."""


def records(count: int, features: bool = True) -> list[EventRecord]:
    """The first `count` events; without `features`, each product view (a shopping scene visit) is a
    SessionStarted of the same user at the same time: the same activity, no scene."""
    out = []
    for position, raw in enumerate(online_retail_events(), start=1):
        if not features and raw["type"] == "SceneVisited":
            raw = {**raw, "type": "SessionStarted", "data": {}}
        envelope = parse_envelope(raw)
        out.append(
            EventRecord(
                position,
                envelope.type,
                1,
                envelope.event_id,
                str(stream_id(envelope.spec.stream, envelope.stream_key)),
                1,
                envelope.user_id,
                envelope.occurred_at,
                envelope.occurred_at,
                envelope.context,
                envelope.data,
            )
        )
        if len(out) >= count:
            break
    return out


async def publish(servers: str, topic: str, events: list[EventRecord]) -> None:
    await ensure_topic(servers, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        sends = []
        for start in range(0, len(events), RELAY_BATCH):
            for partition, message in batch_messages(events[start : start + RELAY_BATCH], PARTITIONS):
                sends.append(await producer.send(topic, value=message, partition=partition))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def bare_consume(servers: str, topic: str) -> tuple[int, float]:
    """Read and decode every message of the topic with a plain aiokafka consumer; returns (events,
    seconds)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        started, count = time.perf_counter(), 0
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                count += sum(len(json.loads(m.value)["events"]) for m in messages)
        return count, time.perf_counter() - started
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--without-features",
        action="store_true",
        help="publish product views as sessions: the cost of the shopping scene's feature cells",
    )
    args = parser.parse_args()
    require_env()
    servers = os.environ["COHORTLINE_KAFKA_URL"].removeprefix("kafka://")
    topic, index = f"bench.projection.{uuid.uuid4().hex[:8]}", f"bench-users-{uuid.uuid4().hex[:8]}"
    events = records(args.events, features=not args.without_features)
    asyncio.run(publish(servers, topic, events))
    consumed, seconds = asyncio.run(bare_consume(servers, topic))
    bare_rate = consumed / seconds

    url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    engine = create_database_engine(url)
    migrations.upgrade(engine)
    env = dict(
        os.environ,
        COHORTLINE_DATABASE_URL=url,
        COHORTLINE_KAFKA_TOPIC=topic,
        COHORTLINE_ELASTICSEARCH_INDEX=index,
        COHORTLINE_KAFKA_PARTITIONS=str(PARTITIONS),
    )
    worker = Command(["worker"], env, Path(tempfile.mkdtemp(prefix="bench-projection-")), "worker")
    try:

        def applied() -> int:
            with engine.connect() as conn:
                return progress(conn, "analytics", PARTITIONS).position

        wait_until(lambda: started_applying(engine), 120, "the worker's first batch", worker)
        started = time.perf_counter()
        wait_until(lambda: applied() >= events[-1].position, 3600, "the worker to apply the topic", worker)
        rate = len(events) / (time.perf_counter() - started)
        size = size_line(*read_model_size(url))
    finally:
        worker.stop()
        engine.dispose()
        drop_database(url)
        delete_index(os.environ["COHORTLINE_ELASTICSEARCH_URL"], index)
    views = (
        "product views as sessions (no feature)"
        if args.without_features
        else "product views as shopping scene visits"
    )
    print(f"{len(events):,} Online Retail events on {PARTITIONS} partitions, {os.cpu_count()} cores; {views}")
    print(f"{'bare aiokafka consumer (baseline)':<44} {bare_rate:>10,.0f} events/s")
    print(
        f"{'worker: Kafka -> PostgreSQL + Elasticsearch':<44} {rate:>10,.0f} events/s   "
        f"{rate / bare_rate:.2f} x baseline   (goal >= {GOAL:,}: {'met' if rate >= GOAL else 'NOT met'})"
    )
    print(size)


def started_applying(engine: Engine) -> bool:
    """Whether the worker has committed its first batch (timing starts there: Faust's start-up and
    the group's first rebalance are not projection work)."""
    with engine.connect() as conn:
        return bool(conn.execute(select(func.max(tracking.c.position))).scalar())


if __name__ == "__main__":
    main()
