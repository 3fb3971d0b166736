"""The event store on PostgreSQL through eventsourcing-sqlalchemy and psycopg2."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, text

from domain.errors import BatchRejected
from infra.database import create_database_engine
from infra.eventstore import open_event_store
from tests.unit.factories import envelope


@pytest.fixture
def event_store(pg_url):
    engine = create_database_engine(pg_url)
    store = open_event_store(engine)
    yield store
    store.close()
    engine.dispose()


def test_facts_are_recorded_in_postgres_and_read_back(event_store):
    recorded = event_store.record(
        [
            envelope("UserRegistered", channel="web"),
            envelope("OrderPlaced", order_id="o1", amount="19.99", currency="EUR"),
            envelope("OrderPaid", order_id="o1", amount="19.99"),
        ]
    )
    assert (recorded.appended, recorded.first_position, recorded.last_position) == (3, 1, 3)
    engine = event_store.recorder.datastore.engine
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg2"
    assert "cohortline_events" in inspect(engine).get_table_names()
    order = [e.type_name() for e in event_store.stream_events("order", "o1")]
    assert order == ["OrderPlaced", "OrderPaid"]
    paid = event_store.stream_events("order", "o1")[1]
    assert str(paid.data["amount"]) == "19.99"
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from cohortline_events")).scalar() == 3


def test_a_rejected_batch_writes_nothing(event_store):
    with pytest.raises(BatchRejected) as rejected:
        event_store.record([envelope("SessionStarted"), envelope("OrderPaid", order_id="nope", amount="1")])
    assert [(c.index, c.code) for c in rejected.value.conflicts] == [(1, "order_not_placed")]
    assert (event_store.recorder.max_notification_id() or 0) == 0


def test_concurrent_writers_to_one_order_keep_its_rules(event_store):
    event_store.record(
        [
            envelope("OrderPlaced", order_id="o1", amount="10", currency="EUR"),
            envelope("OrderPaid", order_id="o1", amount="10"),
        ]
    )

    def refund(_: int) -> str:
        try:
            event_store.record([envelope("OrderRefunded", order_id="o1", amount="4")])
            return "ok"
        except BatchRejected as rejected:
            return rejected.conflicts[0].code

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(refund, range(6)))
    assert sorted(outcomes) == ["ok", "ok"] + ["refund_exceeds_paid"] * 4
    events = event_store.stream_events("order", "o1")
    assert [e.originator_version for e in events] == list(range(1, 5))
