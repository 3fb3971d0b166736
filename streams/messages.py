"""The event topic's messages.

The relay sends each partition its events in log order, many per message: a message is
`{"events": [<event>, ...]}`, and the last message a partition gets from one relay batch also
carries `"watermark": N`, saying that every event at or below position N meant for this partition
was delivered before it. A user's events always go to the partition that Kafka's default
partitioner picks for the key `user_id` (events without a user: `stream:<stream id>`), so a user's
events keep their order and one consumer sees all of them.

Many events per message is what makes a Faust worker fast: Faust spends about as much time on each
message as the projection spends on a few dozen events. Messages of one event, and messages of only
a watermark, as earlier relays sent them, are still read."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

from projections.records import EventRecord, untag
from projections.runner import Delivery

MAX_EVENTS_PER_MESSAGE = 1000
MAX_MESSAGE_BYTES = 512 * 1024
"""Below Kafka's default 1 MiB limit on a message."""


def message_key(record: EventRecord) -> bytes:
    return (record.user_id or f"stream:{record.stream_id}").encode()


@lru_cache(maxsize=1 << 16)
def _partition_of_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_of(record: EventRecord, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the record's key."""
    return _partition_of_key(message_key(record), partitions)


def batch_messages(records: Sequence[EventRecord], partitions: int) -> list[tuple[int, bytes]]:
    """(partition, message) for a batch of consecutive log records: every partition gets its events
    in order and a watermark at the batch's last position, also when it got no events."""
    by_partition: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for record in records:
        by_partition[partition_of(record, partitions)].append(record.to_json())
    watermark = records[-1].position if records else 0
    out = []
    for partition, encoded in by_partition.items():
        chunks = list(_chunks(encoded)) or [[]]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            out.append((partition, _message(chunk, watermark if last else None)))
    return out


def _chunks(encoded: list[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for event in encoded:
        if chunk and (len(chunk) >= MAX_EVENTS_PER_MESSAGE or size + len(event) > MAX_MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += len(event) + 1
    if chunk:
        yield chunk


def _message(events: list[bytes], watermark: int | None) -> bytes:
    tail = b"" if watermark is None else b',"watermark":' + str(watermark).encode()
    return b'{"events":[' + b",".join(events) + b"]" + tail + b"}"


def to_deliveries(partition: int, offset: int, value: bytes) -> list[Delivery]:
    """A message as the deliveries it holds; what cannot be read becomes a dead letter."""
    try:
        body = json.loads(value, object_hook=untag)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
    except Exception as e:
        return [_unreadable(partition, offset, value.decode("utf-8", "replace"), e, 0)]
    if "events" not in body and "watermark" not in body:
        return [_event(partition, offset, body)]
    out = [_event(partition, offset, event) for event in body.get("events", ())]
    if "watermark" in body:
        out.append(Delivery(partition, int(body["watermark"]), offset))
    return out


def _event(partition: int, offset: int, body: object) -> Delivery:
    try:
        record = EventRecord.from_decoded(body)  # type: ignore[arg-type]
    except Exception as e:
        hint = body.get("position") if isinstance(body, dict) else None
        position = hint if isinstance(hint, int) else 0
        return _unreadable(partition, offset, json.dumps(body, default=str), e, position)
    return Delivery(partition, record.position, offset, record)


def _unreadable(partition: int, offset: int, payload: str, error: Exception, position: int) -> Delivery:
    return Delivery(partition, position, offset, None, payload, f"unreadable: {error}")
