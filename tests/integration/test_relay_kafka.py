"""The relay publishes the event store's log to real Kafka, in order, keyed by user."""

import pytest

from infra.database import create_database_engine
from infra.eventstore import open_event_store
from streams.log_reader import LogReader
from streams.relay import Relay, relay_metadata
from tests.integration.streaming import read_topic, relay_until_caught_up
from tests.unit.factories import envelope


@pytest.fixture
def relay(full_stack_env):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    relay_metadata.create_all(engine)
    servers = full_stack_env["COHORTLINE_KAFKA_URL"].removeprefix("kafka://")
    yield Relay(LogReader(store), engine, servers, full_stack_env["COHORTLINE_KAFKA_TOPIC"], partitions=4)
    store.close()
    engine.dispose()


def history():
    for n in range(12):
        user = f"u{n % 5}"
        yield envelope("SessionStarted", user_id=user, at=f"2011-01-{n + 1:02d}T10:00:00Z")
        yield envelope("OrderPlaced", user_id=user, order_id=f"o{n}", amount="5", currency="EUR")


def test_every_event_is_published_keyed_by_user_with_watermarks(relay):
    store = relay.reader.event_store
    store.record(list(history()))
    head = relay_until_caught_up(relay)
    assert head == 24 and relay.saved_position() == 24

    messages = read_topic(relay.servers, relay.topic)
    events = [(p, key, value) for p, _, key, value in messages if "watermark" not in value]
    assert sorted(v["position"] for _, _, v in events) == list(range(1, 25))
    assert all(key.decode() == v["user_id"] for _, key, v in events)
    partitions_of_user = {}
    for partition, _, value in events:
        partitions_of_user.setdefault(value["user_id"], set()).add(partition)
    assert all(len(p) == 1 for p in partitions_of_user.values())
    for partition in range(4):
        positions = [v.get("position", v.get("watermark")) for p, _, _, v in messages if p == partition]
        assert positions == sorted(positions) and positions[-1] == head


def test_after_a_crash_before_saving_it_republishes_rather_than_loses(relay):
    store = relay.reader.event_store
    store.record(list(history()))
    relay_until_caught_up(relay)
    relay.save_position(10)  # as if the relay died after publishing 11..24 but before saving
    store.record([envelope("SessionStarted", user_id="u9")])
    relay_until_caught_up(relay)
    events = [v for _, _, _, v in read_topic(relay.servers, relay.topic) if "watermark" not in v]
    positions = sorted(v["position"] for v in events)
    assert set(positions) == set(range(1, 26))
    assert positions.count(11) == 2 and positions.count(25) == 1
