"""A Faust worker projects the relayed events into PostgreSQL and Elasticsearch, exactly once; what it
cannot read or hold is dead-lettered, and a bug halts its projection at the event until a restart."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaProducer
from elasticsearch import Elasticsearch
from sqlalchemy import select

from api.app import create_app
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.database import create_database_engine
from infra.eventstore import open_event_store
from projections.dead_letters import dead_letters
from projections.halts import halts
from projections.records import EventRecord
from projections.search import ElasticsearchUsers, present_user
from projections.tracking import positions, progress
from projections.users import user_row, users
from streams.log_reader import LogReader
from streams.messages import batch_messages, partition_of
from streams.relay import Relay
from tests.analytics_checks import assert_read_models_equal_reference
from tests.integration.streaming import relay_until_caught_up
from tests.processes import Command, wait_until
from tests.properties import expected_users, user_documents
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
            rows = user_documents(conn)
            assert conn.execute(select(dead_letters)).first() is None
        assert {user_id: present_user(row) for user_id, row in rows.items()} == expected
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
    servers, topic = full_stack_env["COHORTLINE_KAFKA_URL"][8:], full_stack_env["COHORTLINE_KAFKA_TOPIC"]
    relay = Relay(LogReader(store), engine, servers, topic, partitions=4)
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    try:
        store.record(list(history()))
        head = relay_until_caught_up(relay)
        # an amount beyond what the read models hold: the projection rejects the event as invalid
        poison = late(head + 1, "OrderPaid", "poisoned", order_id="p", amount=Decimal("1e16"))
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
            assert conn.execute(select(halts)).first() is None
        assert [(p["position"], p["kind"], p["reason"].split(":")[0]) for p in parked] == [
            (0, "unreadable_message", "unreadable"),
            (head + 1, "invalid_event", "InvalidEvent"),
        ]
        assert '"poisoned"' in parked[1]["payload"]
        everything = LogReader(store).read(0, 10_000)
        assert_read_models_equal_reference(engine, [*everything, after[1]])
    finally:
        worker.stop()
        store.close()
        engine.dispose()


def test_a_bug_halts_the_projection_at_its_event_and_the_worker_parks_until_restarted(
    full_stack_env, tmp_path
):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    servers, topic = full_stack_env["COHORTLINE_KAFKA_URL"][8:], full_stack_env["COHORTLINE_KAFKA_TOPIC"]
    relay = Relay(LogReader(store), engine, servers, topic, partitions=4)
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    try:
        store.record(list(history()))
        head = relay_until_caught_up(relay)
        # one user, so the three share a partition and keep their order
        before = late(head + 1, "SessionStarted", "buggy")
        culprit = late(head + 2, "SceneVisited", "buggy")  # no scene: the projection's own code fails
        after = late(head + 3, "SessionStarted", "buggy", at=LATE + timedelta(days=1))
        asyncio.run(send(servers, topic, batch_messages([before, culprit, after], 4)))
        partition = partition_of(culprit, 4)

        def halted() -> list[dict]:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(select(halts)).mappings()]

        [halt] = wait_until(halted, 120, "the projection to halt", worker)
        assert (halt["projection"], halt["partition"], halt["position"]) == ("analytics", partition, head + 2)
        assert halt["error"].startswith("KeyError")
        assert "HALTED" in logged(worker) and "Traceback" in logged(worker)
        assert_applied_up_to_the_culprit(engine, partition, head)

        system = build_system(load_settings({**full_stack_env, "COHORTLINE_API_KEYS": "read:reader"}))
        try:
            status = (
                create_app(system.api_context())
                .test_client()
                .get("/v1/status", headers={"Authorization": "Bearer read"})
            )
        finally:
            system.close()
        [analytics] = status.json["projections"]
        assert analytics["state"] == "stopped" and analytics["position"] < culprit.position
        assert (analytics["halt"]["partition"], analytics["halt"]["position"]) == (partition, head + 2)
        assert analytics["dead_letters"]["count"] == 0

        assert worker.stop() is not None, "a parked worker stops when asked"
        worker = Command(["worker"], full_stack_env, tmp_path, "worker-restarted")
        # Kafka redelivers the culprit (the parked worker acknowledged nothing past it): tried again
        wait_until(lambda: "HALTED" in logged(worker), 120, "the restarted worker to try again", worker)
        [again] = halted()
        assert (again["position"], again["since"]) == (head + 2, halt["since"])
        assert_applied_up_to_the_culprit(engine, partition, head)
    finally:
        worker.stop()
        store.close()
        engine.dispose()


def logged(command: Command) -> str:
    command.log.flush()
    return command.log_path.read_text(errors="replace")


def assert_applied_up_to_the_culprit(engine, partition: int, head: int) -> None:
    """The event before the culprit is applied; the culprit and the one after it are not, nor
    dead-lettered."""
    with engine.connect() as conn:
        assert positions(conn, "analytics")[partition] == head + 1
        assert user_row(conn, "buggy")["last_active_at"] == LATE.replace(tzinfo=None)
        assert conn.execute(select(dead_letters)).first() is None


LATE = datetime(2011, 5, 1, tzinfo=UTC)


def late(position: int, type_: str, user_id: str, at: datetime = LATE, **data: object) -> EventRecord:
    """An event the relay never sent, at a position after the log's head."""
    return EventRecord(position, type_, 1, f"late{position}", "s", 1, user_id, at, at, {}, dict(data))


async def send(servers: str, topic: str, messages: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for partition, value in messages:
            await producer.send_and_wait(topic, value=value, partition=partition)
    finally:
        await producer.stop()
