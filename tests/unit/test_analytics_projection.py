"""Every analytics answer equals the batch recomputation from metrics.md, whatever order the same
events arrive in and however they are batched (embedded: SQLite)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analytics_checks import assert_reports_equal_reference
from tests.properties import arrivals, event_histories


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arrival_order_gives_the_batch_answer(sqlite_engine, data):
    events = data.draw(event_histories(max_events=60, days=100))
    batches = data.draw(arrivals(events))
    assert_reports_equal_reference(sqlite_engine, events, batches)
