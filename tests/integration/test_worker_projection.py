"""A Faust worker projects the relayed events into PostgreSQL and Elasticsearch, exactly once; what it
cannot read or hold is dead-lettered, and a bug halts its projection at the event until a restart."""

import asyncio
from datetime import UTC, date, datetime, timedelta
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
from tests import reference
from tests.analytics_checks import assert_read_models_equal_reference
from tests.integration.streaming import relay_until_caught_up
from tests.processes import Command, wait_until
from tests.properties import as_reference, expected_users, user_documents
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


def levers(late: bool):
    """A campaign (ended, then enrolments dated before its end arriving after it: `late`), coupons
    issued for it and redeemed, GBP orders with a partial and a full refund, tickets with agent and
    customer replies (one left unresolved) and ratings."""
    users = ("u4", "u5", "u6") if late else ("u0", "u1", "u2", "u3")
    if not late:
        yield envelope(
            "CampaignCreated",
            user_id=None,
            campaign_id="c1",
            name="Winter",
            kind="incentive",
            starts_at="2011-01-01T00:00:00+08:00",
            at="2010-12-31T00:00:00Z",
        )
        yield envelope("CampaignEnded", user_id=None, campaign_id="c1", at="2011-02-01T00:00:00Z")
    for k, user in enumerate(users):
        at = f"2011-01-{10 + k:02d}T12:00:00Z"
        group = "treatment" if k % 2 == 0 else "control"
        yield envelope("CampaignEnrolled", user_id=user, campaign_id="c1", group=group, at=at)
        order = f"g-{user}"
        yield envelope("OrderPlaced", user_id=user, order_id=order, amount="40.00", currency="GBP", at=at)
        yield envelope("OrderPaid", user_id=user, order_id=order, amount="40.00", at=at)
        if group == "treatment":
            yield envelope(
                "CouponIssued",
                user_id=user,
                coupon_id=f"k-{user}",
                campaign_id="c1",
                value="5",
                currency="GBP",
                at=at,
            )
            yield envelope("CouponRedeemed", user_id=user, coupon_id=f"k-{user}", order_id=order, at=at)
        refund = ("40.00", "12.35", None)[k % 3]
        if refund:
            yield envelope(
                "OrderRefunded",
                user_id=user,
                order_id=order,
                amount=refund,
                at=f"2011-01-{20 + k:02d}T08:00:00Z",
            )
        ticket = f"t-{user}"
        yield envelope("TicketOpened", user_id=user, ticket_id=ticket, at=f"2011-02-{3 + k:02d}T09:00:00Z")
        yield envelope(
            "TicketReplied",
            user_id=user,
            ticket_id=ticket,
            by="customer",
            at=f"2011-02-{3 + k:02d}T09:30:00Z",
        )
        yield envelope(
            "TicketReplied", user_id=user, ticket_id=ticket, by="agent", at=f"2011-02-{3 + k:02d}T10:15:00Z"
        )
        if k != 1:
            yield envelope(
                "TicketResolved", user_id=user, ticket_id=ticket, at=f"2011-02-{4 + k:02d}T16:00:00Z"
            )
            yield envelope(
                "SatisfactionRated",
                user_id=user,
                ticket_id=ticket,
                score=1 + 2 * k % 5,
                at=f"2011-02-{5 + k:02d}T08:00:00Z",
            )


def feature_uses(late: bool):
    """Wishlist and content uses; `late`: check-ins dated months before the users' first known ones,
    which move their adoption (and every feature cohort count) earlier."""
    for k, user in enumerate(("u0", "u1", "u2", "u3")):
        yield envelope("ToolUsed", user_id=user, tool="wishlist", at=f"2011-02-{1 + 5 * k:02d}T10:00:00Z")
        yield envelope("ToolUsed", user_id=user, tool="wishlist", at=f"2011-03-{1 + 7 * k:02d}T10:00:00Z")
        if late and k % 2:
            yield envelope("ToolUsed", user_id=user, tool="check_in", at=f"2011-01-{20 + k:02d}T07:00:00Z")
        if late or k < 2:
            yield envelope("SceneVisited", user_id=user, scene="content", at=f"2011-01-{3 + k:02d}T10:00:00Z")


def test_worker_projects_into_postgres_and_elasticsearch_exactly_once(full_stack_env, tmp_path):
    engine = create_database_engine(full_stack_env["COHORTLINE_DATABASE_URL"])
    store = open_event_store(engine)
    topic = full_stack_env["COHORTLINE_KAFKA_TOPIC"]
    relay = Relay(LogReader(store), engine, full_stack_env["COHORTLINE_KAFKA_URL"][8:], topic, partitions=4)
    worker = Command(["worker"], full_stack_env, tmp_path, "worker")
    es = Elasticsearch(full_stack_env["COHORTLINE_ELASTICSEARCH_URL"])
    index = ElasticsearchUsers(es, full_stack_env["COHORTLINE_ELASTICSEARCH_INDEX"])
    try:
        store.record([*history(), *levers(late=False), *feature_uses(late=False)])
        head = relay_until_caught_up(relay)

        def caught_up(target: int) -> bool:
            with engine.connect() as conn:
                return progress(conn, "analytics", 4).position >= target

        wait_until(lambda: caught_up(head), 120, "the worker to apply the log", worker)
        relay.save_position(0)  # the relay republishes everything, as after a crash
        store.record([*history(offset=30), *levers(late=True), *feature_uses(late=True)])
        head = relay_until_caught_up(relay)
        wait_until(lambda: caught_up(head), 120, "the worker to apply the republished log", worker)

        everything = LogReader(store).read(0, 10_000)
        expected = expected_users(everything)
        with engine.connect() as conn:
            rows = user_documents(conn)
            assert conn.execute(select(dead_letters)).first() is None
        assert {user_id: present_user(row) for user_id, row in rows.items()} == expected
        assert_read_models_equal_reference(engine, everything)
        assert_lever_routes_equal_reference(full_stack_env, everything)
        es.indices.refresh(index=index.index)
        for user_id, row in rows.items():
            assert index.get(user_id) == row
    finally:
        worker.stop()
        es.close()
        store.close()
        engine.dispose()


def assert_lever_routes_equal_reference(env: dict[str, str], events: list[EventRecord]) -> None:
    """The value, campaign, service, overview and feature routes over the worker's read models answer as the
    reference does."""
    history = as_reference(events)
    watermark = reference.watermark_of(history)
    asked = {"from": "2011-01-01", "to": "2011-04-30"}
    system = build_system(load_settings({**env, "COHORTLINE_API_KEYS": "read:reader"}))
    try:
        client = create_app(system.api_context()).test_client()

        def get(path: str, **params: str) -> dict:
            response = client.get(path, query_string=params, headers={"Authorization": "Bearer read"})
            assert response.status_code == 200, (path, response.json)
            return {k: v for k, v in response.json.items() if k not in ("as_of", "watermark")}

        start, end = date(2011, 1, 1), date(2011, 4, 30)
        assert get("/v1/campaigns")["campaigns"] == reference.campaigns(history)["campaigns"]
        effect = get("/v1/campaigns/c1/effect")
        assert effect == reference.campaign_effect(history, "c1", watermark)
        assert effect["groups"]["treatment"]["members"] + effect["groups"]["control"]["members"] == 7
        ltv = get("/v1/value/ltv", granularity="month", cohort="first_order", **asked)["cohorts"]
        assert ltv == reference.ltv(history, "month", "first_order", start, end, None, watermark)["cohorts"]
        service = get("/v1/service/satisfaction", granularity="week", **asked)
        assert service == {
            "granularity": "week",
            **reference.satisfaction(history, "week", start, end, watermark),
        }
        overview = get("/v1/overview", **{"from": "2011-02-01", "to": "2011-02-28"})
        assert overview == reference.overview(history, date(2011, 2, 1), date(2011, 2, 28), watermark)
        report = get("/v1/features", **asked)["features"]
        assert report == reference.features(history, start, end, watermark)
        assert {row["feature"] for row in report} == {
            "scene:social",
            "scene:content",
            "tool:check_in",
            "tool:wishlist",
        }
        for cohort, returns in (
            ("tool:check_in", "tool:check_in"),
            ("tool:check_in", "active"),
            ("first_seen", "scene:content"),
        ):
            found = get(
                "/v1/retention/cohorts", granularity="month", cohort=cohort, **{"return": returns}, **asked
            )
            want = reference.retention(history, "month", cohort, returns, "on", start, end, 3, watermark)
            assert found["cohorts"] == want
        impact = get("/v1/features/tool:check_in/impact", **{"from": "2011-01-01", "to": "2011-03-31"})
        assert impact == reference.feature_impact(
            history, "tool:check_in", date(2011, 1, 1), date(2011, 3, 31), watermark
        )
    finally:
        system.close()


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
