"""The user state read model equals a batch recomputation for any arrival order, on PostgreSQL."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.properties import arrivals, event_histories, expected_users, projected_users


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_gives_the_batch_answer(pg_engine, data):
    events = data.draw(event_histories(max_events=50, days=400))
    batches = data.draw(arrivals(events))
    assert projected_users(pg_engine, batches) == expected_users(events)
