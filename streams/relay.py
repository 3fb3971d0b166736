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
from aiokafka.errors import TopicAlreadyExistsError
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, select

from projections.records import EventRecord
from streams.log_reader import LogReader
from streams.messages import batch_messages
from streams.metrics import relay_batch_seconds, relay_events, relay_position

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
            position = self.saved_position()
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
        finally:
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
