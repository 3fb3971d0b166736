"""The Faust worker: one agent per projection, each reading the event topic in batches and applying
them through its ProjectionRunner (read model, search documents and position in one transaction);
each message holds many events (streams.messages).

Agents run with concurrency 1 and `take_events`, which acknowledges a batch only after it was
applied, so Kafka's committed offsets never pass what the read models hold. An agent whose
projection halted (projections.halts) parks: it stops consuming and acknowledges nothing more.
While parked, Faust stops fetching its partitions once their buffers fill, for every agent of the
topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from projections.failures import TransientError
from projections.halts import ProjectionHalted
from projections.runner import Delivery, ProjectionRunner
from streams.messages import to_deliveries
from streams.metrics import lag_measure_failures, record_lag

log = logging.getLogger(__name__)

BATCH_MESSAGES = 64
BATCH_WITHIN_S = 0.1
EVENTS_PER_TRANSACTION = 5000
RETRY_DELAYS_S = (0.5, 1, 2, 5, 10)
SESSION_TIMEOUT_S = 10.0
"""A worker that dies without leaving the group has its partitions reassigned after this."""
HEARTBEAT_S = 3.0
BUFFERED_MESSAGES = 4 * BATCH_MESSAGES
"""Messages an agent may hold fetched ahead of what it applies. A message holds up to 512 KiB of
events, so Faust's default of 4,096 let a worker that fell behind grow by gigabytes."""
LAG_EVERY_S = 5.0
"""How often the worker asks Kafka for its partitions' end and committed offsets (metrics)."""


class StopRequested(Exception):
    """The worker is stopping while a batch waits for a backend: the batch is left unacknowledged."""


def apply_with_retry(
    runner: ProjectionRunner, deliveries: Sequence[Delivery], should_stop: Callable[[], bool] = lambda: False
) -> int:
    """Apply a batch, waiting out an unavailable database or Elasticsearch until the worker stops
    (StopRequested)."""
    attempt = 0
    while True:
        try:
            return runner.process(deliveries)
        except TransientError:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning(
                "projection %s: backend unavailable, retrying in %ss", runner.name, delay, exc_info=True
            )
            attempt += 1
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if should_stop():
                    raise StopRequested(runner.name) from None
                time.sleep(0.1)


def project_messages(
    runner: ProjectionRunner,
    raw: Sequence[tuple[int, int, bytes]],
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Decode a batch of messages and apply their events, a transaction per EVENTS_PER_TRANSACTION
    (off the event loop, which meanwhile keeps fetching)."""
    deliveries = [d for partition, offset, value in raw for d in to_deliveries(partition, offset, value)]
    for start in range(0, len(deliveries), EVENTS_PER_TRANSACTION):
        apply_with_retry(runner, deliveries[start : start + EVENTS_PER_TRANSACTION], should_stop)


def group_id(topic_name: str) -> str:
    """The consumer group of the workers of one event topic: deployments sharing a Kafka cluster
    (and workers of different topics) never rebalance one another."""
    return f"cohortline-projections.{topic_name}"


def create_worker_app(
    servers: Sequence[str],
    topic_name: str,
    partitions: int,
    runners: Sequence[ProjectionRunner],
    datadir: Path,
) -> faust.App:
    app = faust.App(
        group_id(topic_name),
        broker=[f"kafka://{s}" for s in servers],
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=str(datadir),
        stream_wait_empty=False,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_S,
        stream_buffer_maxsize=BUFFERED_MESSAGES,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, partitions=partitions)
    for runner in runners:
        _add_agent(app, topic, runner)
    _add_lag_timer(app, topic_name, ",".join(servers))
    return app


def _add_lag_timer(app: faust.App, topic_name: str, servers: str) -> None:
    """Every LAG_EVERY_S, the lag of each partition assigned to this worker (streams.metrics):
    end offsets from the worker's consumer, committed offsets from the group coordinator, which is
    where a restarted or another worker resumes from."""

    async def measure() -> None:
        assigned = sorted(tp for tp in app.consumer.assignment() if tp.topic == topic_name)
        if not assigned:
            record_lag(topic_name, {}, {})
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=5000)
        try:
            await admin.start()
            ends = await app.consumer.highwaters(*assigned)
            partitions = [TopicPartition(tp.topic, tp.partition) for tp in assigned]
            committed = await admin.list_consumer_group_offsets(app.conf.id, partitions=partitions)
        except Exception:
            lag_measure_failures.inc()
            log.warning("could not measure the consumer lag; trying again later", exc_info=True)
            return
        finally:
            await admin.close()
        record_lag(
            topic_name,
            {tp.partition: end for tp, end in ends.items()},
            {tp.partition: meta.offset if meta.offset >= 0 else None for tp, meta in committed.items()},
        )

    app.timer(LAG_EVERY_S, name="measure-consumer-lag")(measure)


def _add_agent(app: faust.App, topic: Any, runner: ProjectionRunner) -> None:
    async def project(stream: faust.StreamT) -> None:
        async for messages in stream.take_events(BATCH_MESSAGES, within=BATCH_WITHIN_S):
            hold(messages)
            raw = [(m.message.partition, m.message.offset, m.message.value) for m in messages]
            try:
                await asyncio.to_thread(project_messages, runner, raw, lambda: app.should_stop)
            except ProjectionHalted as halted:
                await park(halted)
            except StopRequested:
                return
            release(messages)

    app.agent(topic, name=f"project-{runner.name}", concurrency=1)(project)


async def park(halted: ProjectionHalted) -> None:
    """Stop consuming for a halted projection until the worker restarts, the batch that holds the
    culprit held (never released), so Kafka's committed offsets stay before it (the runner logged
    and recorded the halt). On restart the projection tries the culprit again."""
    halt = halted.halt
    log.error(
        "projection %s: parked at partition %s, position %s until the worker restarts",
        halt.projection,
        halt.partition,
        halt.position,
    )
    await asyncio.Event().wait()


def hold(batch: Sequence[Any]) -> None:
    """Keep a taken batch from being acknowledged until `release`: Faust acknowledges it when the
    agent is done with it, and also when the stream stops (a worker told to stop closes the batch
    in hand, applied or not); one more reference on each message keeps that acknowledgement from
    being the final one. Kafka's committed offsets then stay before a batch that was never
    released, and the next owner of its partitions applies it (what was applied already is
    skipped by position)."""
    for event in batch:
        event.message.incref()


def release(batch: Sequence[Any]) -> None:
    """The batch is applied: Faust's own acknowledgement may now be the final one."""
    for event in batch:
        event.message.decref()
