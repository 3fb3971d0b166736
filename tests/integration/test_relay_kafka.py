"""The relay publishes the event store's log to real Kafka, in order, each user's events on the
partition their user id keys, with a watermark to every partition."""

import pytest
from aiokafka.partitioner import DefaultPartitioner

from infra.database import create_database_engine
from infra.eventstore import open_event_store
from streams.log_reader import LogReader
from streams.relay import Relay
from tests.integration.streaming import read_topic, relay_until_caught_up
from tests.unit.factories import envelope


@pytest.fixture
def relay(full_stack_env):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    servers = full_stack_env["COHORTLINE_KAFKA_URL"].removeprefix("kafka://")
    yield Relay(LogReader(store), engine, servers, full_stack_env["COHORTLINE_KAFKA_TOPIC"], partitions=4)
    store.close()
    engine.dispose()


def history():
    for n in range(12):
        user = f"u{n % 5}"
        yield envelope("SessionStarted", user_id=user, at=f"2011-01-{n + 1:02d}T10:00:00Z")
        yield envelope("OrderPlaced", user_id=user, order_id=f"o{n}", amount="5", currency="EUR")


def events_of(messages):
    """(partition, event) for every event in the messages, in topic order."""
    return [(partition, event) for partition, _, _, value in messages for event in value["events"]]


def test_every_event_is_published_on_its_users_partition_with_watermarks(relay):
    store = relay.reader.event_store
    store.record(list(history()))
    relay.batch_size = 10  # several relay batches, so several watermarks per partition
    head = relay_until_caught_up(relay)
    assert head == 24 and relay.saved_position() == 24

    messages = read_topic(relay.servers, relay.topic)
    events = events_of(messages)
    assert sorted(e["position"] for _, e in events) == list(range(1, 25))
    for partition, event in events:
        assert partition == DefaultPartitioner()(event["user_id"].encode(), [0, 1, 2, 3], [0, 1, 2, 3])
    for partition in range(4):
        mine = [v for p, _, _, v in messages if p == partition]
        positions = [e["position"] for v in mine for e in v["events"]]
        assert positions == sorted(positions)
        watermarks = [v["watermark"] for v in mine if "watermark" in v]
        assert watermarks == [10, 20, 24]
        for message in mine:
            if "watermark" in message:
                assert all(e["position"] <= message["watermark"] for e in message["events"])


def test_after_a_crash_before_saving_it_republishes_rather_than_loses(relay):
    store = relay.reader.event_store
    store.record(list(history()))
    relay_until_caught_up(relay)
    relay.save_position(10)  # as if the relay died after publishing 11..24 but before saving
    store.record([envelope("SessionStarted", user_id="u9")])
    relay_until_caught_up(relay)
    events = [e for _, e in events_of(read_topic(relay.servers, relay.topic))]
    positions = sorted(e["position"] for e in events)
    assert set(positions) == set(range(1, 26))
    assert positions.count(11) == 2 and positions.count(25) == 1
