"""The event topic's messages: many events per message, on their user's partition, watermarked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from aiokafka.partitioner import DefaultPartitioner

from projections.records import EventRecord
from streams import messages
from streams.messages import batch_messages, to_deliveries


def record(position: int, user_id: str | None) -> EventRecord:
    at = datetime(2011, 1, 4, 10, tzinfo=UTC)
    return EventRecord(
        position, "OrderPaid", 1, f"e{position}", f"s{position}", 1, user_id, at, at, {"country": "FR"},
        {"order_id": "o1", "amount": Decimal("12.50")},
    )  # fmt: skip


def deliveries_of(sent: list[tuple[int, bytes]]) -> dict[int, list]:
    out: dict[int, list] = {}
    for offset, (partition, message) in enumerate(sent):
        out.setdefault(partition, []).extend(to_deliveries(partition, offset, message))
    return out


def test_a_batch_round_trips_each_event_on_its_users_partition_in_order():
    records = [record(p, f"u{p % 7}" if p % 5 else None) for p in range(1, 101)]
    got = deliveries_of(batch_messages(records, 4))
    assert set(got) == {0, 1, 2, 3}
    for partition, deliveries in got.items():
        events = [d.event for d in deliveries if d.event is not None]
        assert [e.position for e in events] == sorted(e.position for e in events)
        for e in events:
            key = (e.user_id or f"stream:{e.stream_id}").encode()
            assert DefaultPartitioner()(key, [0, 1, 2, 3], []) == partition
        assert deliveries[-1].event is None and deliveries[-1].position == 100
    received = [d.event for ds in got.values() for d in ds if d.event]
    assert sorted(received, key=lambda e: e.position) == records


def test_large_batches_are_split_and_only_the_last_message_carries_the_watermark(monkeypatch):
    monkeypatch.setattr(messages, "MAX_EVENTS_PER_MESSAGE", 3)
    records = [record(p, "same-user") for p in range(1, 11)]
    sent = batch_messages(records, 2)
    mine = [json.loads(m) for _, m in sent if json.loads(m)["events"]]
    assert [len(m["events"]) for m in mine] == [3, 3, 3, 1]
    assert ["watermark" in m for m in mine] == [False, False, False, True]
    assert all(len(m) <= messages.MAX_MESSAGE_BYTES for _, m in sent)
    empty = [json.loads(m) for _, m in sent if not json.loads(m)["events"]]
    assert empty == [{"events": [], "watermark": 10}]


def test_messages_of_earlier_relays_are_still_read():
    one = to_deliveries(2, 7, record(5, "u1").to_json())
    assert [(d.partition, d.position, d.offset, d.event) for d in one] == [(2, 5, 7, record(5, "u1"))]
    mark = to_deliveries(2, 8, json.dumps({"watermark": 9}).encode())
    assert [(d.position, d.event) for d in mark] == [(9, None)]
    empty = json.dumps({"events": [], "watermark": 4}).encode()
    assert [(d.position, d.event) for d in to_deliveries(0, 1, empty)] == [(4, None)]


def test_what_cannot_be_read_becomes_a_dead_letter_with_its_reason():
    (garbage,) = to_deliveries(0, 3, b"\xff not json")
    assert garbage.event is None and garbage.position == 0 and garbage.error.startswith("unreadable")
    body = {"events": [record(1, "u1").to_wire(), {"position": 2, "type": "OrderPaid"}], "watermark": 2}
    good, bad, mark = to_deliveries(0, 4, json.dumps(body).encode())
    assert good.event == record(1, "u1")
    assert bad.event is None and bad.position == 2 and "unreadable" in bad.error
    assert '"position": 2' in bad.payload
    assert mark.position == 2 and mark.event is None
