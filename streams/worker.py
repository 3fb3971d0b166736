"""The Faust worker: one agent per projection, each reading the event topic in batches and applying
them through its ProjectionRunner (read model, search documents and position in one transaction).

Agents run with concurrency 1 and `take_events`, which acknowledges a batch only after it was
applied, so Kafka's committed offsets never pass what the read models hold."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust

from projections.records import EventRecord
from projections.runner import Delivery, ProjectionRunner, TransientError

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
BATCH_WITHIN_S = 0.2
RETRY_DELAYS_S = (0.5, 1, 2, 5, 10)
SESSION_TIMEOUT_S = 10.0
"""A worker that dies without leaving the group has its partitions reassigned after this."""
HEARTBEAT_S = 3.0


def to_delivery(partition: int, offset: int, value: bytes) -> Delivery:
    """A Kafka message as a delivery; one that cannot be read becomes a dead letter."""
    try:
        body = json.loads(value)
        if "watermark" in body:
            return Delivery(partition, int(body["watermark"]), offset)
        record = EventRecord.from_json(body)
        return Delivery(partition, record.position, offset, record)
    except Exception as e:
        position = _position_hint(value)
        return Delivery(
            partition, position, offset, None, value.decode("utf-8", "replace"), f"unreadable: {e}"
        )


def _position_hint(value: bytes) -> int:
    try:
        return int(json.loads(value)["position"])
    except Exception:
        return 0


def apply_with_retry(runner: ProjectionRunner, deliveries: Sequence[Delivery]) -> int:
    """Apply a batch, waiting out an unavailable database or Elasticsearch."""
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

            time.sleep(delay)


def create_worker_app(
    servers: Sequence[str],
    topic_name: str,
    partitions: int,
    runners: Sequence[ProjectionRunner],
    datadir: Path,
) -> faust.App:
    app = faust.App(
        "cohortline-projections",
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
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, partitions=partitions)
    for runner in runners:
        _add_agent(app, topic, runner)
    return app


def _add_agent(app: faust.App, topic: Any, runner: ProjectionRunner) -> None:
    async def project(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            deliveries = [to_delivery(e.message.partition, e.message.offset, e.message.value) for e in events]
            await asyncio.to_thread(apply_with_retry, runner, deliveries)

    app.agent(topic, name=f"project-{runner.name}", concurrency=1)(project)
