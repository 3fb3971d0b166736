"""A Faust worker projects the relayed events into PostgreSQL and Elasticsearch, exactly once."""

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from elasticsearch import Elasticsearch
from sqlalchemy import select

from infra.database import create_database_engine
from infra.eventstore import open_event_store
from projections.presenters import present_user
from projections.records import EventRecord
from projections.runner import dead_letters
from projections.search import ElasticsearchUsers
from projections.tracking import progress
from projections.users import users
from streams.log_reader import LogReader
from streams.messages import batch_messages
from streams.relay import Relay, relay_metadata
from tests.analytics_checks import assert_read_models_equal_reference
from tests.integration.streaming import relay_until_caught_up
from tests.processes import Command, wait_until
from tests.properties import expected_users
from tests.unit.factories import envelope


def history(offset: int = 0):
    for n in range(offset, offset + 30):
        user = f"u{n % 7}"
        yield envelope("SessionStarted", user_id=user, at=f"2011-02-{n % 28 + 1:02d}T10:00:00Z")
        yield envelope("SceneVisited", user_id=user, scene="social", at=f"2011-03-{n % 28 + 1:02d}T10:00:00Z")
        yield envelope("ToolUsed", user_id=user, tool="check_in", at=f"2011-04-{n % 28 + 1:02d}T10:00:00Z")
        if n % 3 == 0:
            yield envelope("UserRegistered", user_id=f"r{n}", at=f"2011-01-{n % 28 + 1:02d}T09:00:00Z")
        yield envelope(
            "OrderPlaced",
            user_id=user,
            order_id=f"o{n}",
            amount=f"{n}.50",
            currency="EUR",
            at=f"2011-01-{n % 28 + 1:02d}T10:00:00Z",
        )
        yield envelope("OrderPaid", user_id=user, order_id=f"o{n}", amount=f"{n}.50")


def test_worker_projects_into_postgres_and_elasticsearch_exactly_once(full_stack_env, tmp_path):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    relay_metadata.create_all(engine)
    topic = full_stack_env["COHORTLINE_KAFKA_TOPIC"]
    relay = Relay(LogReader(store), engine, full_stack_env["COHORTLINE_KAFKA_URL"][8:], topic, partitions=4)
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    es = Elasticsearch(full_stack_env["COHORTLINE_ELASTICSEARCH_URL"])
    index = ElasticsearchUsers(es, full_stack_env["COHORTLINE_ELASTICSEARCH_INDEX"])
    try:
        store.record(list(history()))
        head = relay_until_caught_up(relay)

        def caught_up(target: int) -> bool:
            with engine.connect() as conn:
                return progress(conn, "analytics", 4).position >= target

        wait_until(lambda: caught_up(head), 120, "the worker to apply the log", worker)
        relay.save_position(0)  # the relay republishes everything, as after a crash
        store.record(list(history(offset=30)))
        head = relay_until_caught_up(relay)
        wait_until(lambda: caught_up(head), 120, "the worker to apply the republished log", worker)

        everything = LogReader(store).read(0, 10_000)
        expected = expected_users(everything)
        with engine.connect() as conn:
            rows = {r["user_id"]: present_user(dict(r)) for r in conn.execute(select(users)).mappings()}
            assert conn.execute(select(dead_letters)).first() is None
        assert rows == expected
        assert_read_models_equal_reference(engine, everything)
        es.indices.refresh(index=index.index)
        for user_id, row in rows.items():
            assert index.get(user_id) == row
    finally:
        worker.stop()
        es.close()
        store.close()
        engine.dispose()


def test_what_cannot_be_projected_goes_to_dead_letters_and_the_stream_moves_on(full_stack_env, tmp_path):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    relay_metadata.create_all(engine)
    servers, topic = full_stack_env["COHORTLINE_KAFKA_URL"][8:], full_stack_env["COHORTLINE_KAFKA_TOPIC"]
    relay = Relay(LogReader(store), engine, servers, topic, partitions=4)
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    try:
        store.record(list(history()))
        head = relay_until_caught_up(relay)
        at = datetime(2011, 5, 1, tzinfo=UTC)

        def late(position: int, type_: str, user_id: str) -> EventRecord:
            return EventRecord(position, type_, 1, f"late{position}", "s", 1, user_id, at, at, {}, {})

        poison = late(head + 1, "SceneVisited", "poisoned")  # no scene: the projection fails on it
        after = [poison, late(head + 2, "SessionStarted", "after-poison")]
        messages = [(0, b"\x00 not a message"), *batch_messages(after, 4)]
        asyncio.run(send(servers, topic, messages))

        def applied() -> int:
            with engine.connect() as conn:
                return progress(conn, "analytics", 4).position

        wait_until(lambda: applied() >= head + 2, 120, "the worker to pass the poison", worker)
        with engine.connect() as conn:
            parked = conn.execute(select(dead_letters).order_by(dead_letters.c.position)).mappings().all()
            assert conn.execute(select(users.c.user_id).where(users.c.user_id == "after-poison")).first()
            assert not conn.execute(select(users.c.user_id).where(users.c.user_id == "poisoned")).first()
        assert [(p["position"], p["reason"].split(":")[0]) for p in parked] == [
            (0, "unreadable"),
            (head + 1, "KeyError"),
        ]
        assert '"poisoned"' in parked[1]["payload"]
        everything = LogReader(store).read(0, 10_000)
        assert_read_models_equal_reference(engine, [*everything, after[1]])
    finally:
        worker.stop()
        store.close()
        engine.dispose()


async def send(servers: str, topic: str, messages: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for partition, value in messages:
            await producer.send_and_wait(topic, value=value, partition=partition)
    finally:
        await producer.stop()
