"""The relay (outbox): follows the event store's log in order and publishes every event to Kafka,
on its user's partition, with a watermark to every partition (streams.messages), then saves how far
it got.

After a crash it resumes from the saved position, so an event may be published twice but never
lost; consumers drop repeats by position (projections.tracking)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError

from projections.failures import database_unavailable
from projections.records import EventRecord
from streams.log_reader import LogReader
from streams.messages import batch_messages
from streams.metrics import relay_batch_seconds, relay_events, relay_position, relay_reconnects

log = logging.getLogger(__name__)

relay_metadata = MetaData()
relay_positions = Table(
    "relay_position",
    relay_metadata,
    Column("topic", String(255), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


async def ensure_topic(servers: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


class Relay:
    def __init__(
        self,
        reader: LogReader,
        engine: Engine,
        servers: str,
        topic: str,
        partitions: int,
        batch_size: int = 5000,
    ):
        self.reader = reader
        self.engine = engine
        self.servers = servers
        self.topic = topic
        self.partitions = partitions
        self.batch_size = batch_size

    def saved_position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(relay_positions.c.position).where(relay_positions.c.topic == self.topic)
            ).scalar()
        return int(found or 0)

    def save_position(self, position: int) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                relay_positions.update()
                .where(relay_positions.c.topic == self.topic)
                .values(position=position)
            ).rowcount
            if not updated:
                conn.execute(relay_positions.insert().values(topic=self.topic, position=position))

    async def run(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Publish until `should_stop`; when PostgreSQL or Kafka goes away, start again from the
        saved position after a back-off (what was published but not saved is published again)."""
        failures = 0

        def progressed() -> None:
            nonlocal failures
            failures = 0

        while not should_stop():
            try:
                await self._publish_until_stopped(should_stop, idle, progressed)
                return
            except Exception as e:
                if not _unavailable(e):
                    raise
                delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
                failures += 1
                relay_reconnects.inc()
                log.warning("relay: %s unavailable (%s); starting again in %ss", _which(e), e, delay)
                await _sleep_unless_stopped(delay, should_stop)

    async def _publish_until_stopped(
        self,
        should_stop: Callable[[], bool],
        idle: Callable[[], Awaitable[None]] | None,
        on_progress: Callable[[], None],
    ) -> None:
        await ensure_topic(self.servers, self.topic, self.partitions)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=1 << 20,
        )
        await producer.start()
        try:
            position = await asyncio.to_thread(self.saved_position)
            relay_position.set(position)
            log.info("relay: publishing to %s from position %s", self.topic, position)
            while not should_stop():
                records = await asyncio.to_thread(self.reader.read, position, self.batch_size)
                if not records:
                    await (idle() if idle else asyncio.sleep(0.05))
                    continue
                with relay_batch_seconds.time():
                    position = await self.publish(producer, records)
                await asyncio.to_thread(self.save_position, position)
                relay_events.inc(len(records))
                relay_position.set(position)
                on_progress()
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def publish(self, producer: AIOKafkaProducer, records: list[EventRecord]) -> int:
        """Publish a batch, each partition's events with a watermark; returns the last position."""
        partitions = len(await producer.partitions_for(self.topic))
        sends = [
            await producer.send(self.topic, value=message, partition=partition)
            for partition, message in batch_messages(records, partitions)
        ]
        await asyncio.gather(*sends)
        return records[-1].position


RETRY_DELAYS_S = (0.5, 1, 2, 5, 10)


def _unavailable(error: BaseException) -> bool:
    """PostgreSQL or Kafka cannot be reached (not a bug in the relay)."""
    return database_unavailable(error) or isinstance(error, (KafkaError, OSError, asyncio.TimeoutError))


def _which(error: BaseException) -> str:
    return "PostgreSQL" if isinstance(error, DBAPIError) else "Kafka"


async def _sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not should_stop() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
