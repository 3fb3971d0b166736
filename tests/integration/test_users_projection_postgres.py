"""The user state read model equals a batch recomputation for any arrival order, on PostgreSQL."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.database import create_database_engine
from projections.schema import metadata
from tests.properties import arrivals, event_histories, expected_users, projected_users


@pytest.fixture
def pg_engine(pg_url):
    engine = create_database_engine(pg_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_gives_the_batch_answer(pg_engine, data):
    events = data.draw(event_histories(max_events=50, days=400))
    batches = data.draw(arrivals(events))
    assert projected_users(pg_engine, batches) == expected_users(events)
