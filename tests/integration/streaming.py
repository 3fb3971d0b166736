"""Helpers for tests on Kafka: run the relay until caught up, read a topic to its end."""

from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.relay import Relay


def relay_until_caught_up(relay: Relay, timeout: float = 60) -> int:
    head = relay.reader.head()
    asyncio.run(asyncio.wait_for(relay.run(should_stop=lambda: relay.saved_position() >= head), timeout))
    return head


def read_topic(
    servers: str, topic: str, partition_count: int = 4
) -> list[tuple[int, int, bytes | None, dict]]:
    """Every message of `topic` as (partition, offset, key, value)."""

    async def read() -> list[tuple[int, int, bytes | None, dict]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(partition_count)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            out = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batch.items():
                    out += [(tp.partition, m.offset, m.key, json.loads(m.value)) for m in messages]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(read(), 60))
