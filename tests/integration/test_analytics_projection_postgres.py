"""Every analytics answer equals the batch recomputation for any arrival order, on PostgreSQL."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analytics_checks import assert_reports_equal_reference
from tests.properties import arrivals, event_histories


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_gives_the_batch_answer(pg_engine, data):
    events = data.draw(event_histories(max_events=60, days=100))
    batches = data.draw(arrivals(events))
    assert_reports_equal_reference(pg_engine, events, batches)
