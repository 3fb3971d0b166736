"""The event store refuses updates and deletes in the database itself, for any client."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.integration.test_append_http import PRODUCER, event, stored


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE cohortline_events SET topic = 'x'",
        "DELETE FROM cohortline_events",
        "UPDATE cohortline_event_ids SET position = 0",
        "DELETE FROM cohortline_event_ids",
    ],
)
def test_updates_and_deletes_are_refused(client, system, statement):
    client.post(
        "/v1/events",
        json={"events": [event("SessionStarted"), event("ToolUsed", tool="wishlist")]},
        headers=PRODUCER,
    )
    with pytest.raises(DBAPIError) as refused, system.engine.begin() as conn:
        conn.execute(text(statement))
    assert "append-only" in str(refused.value)
    assert stored(system) == (2, 2)


def test_truncate_is_refused_on_postgres(pg_url):
    from infra.bootstrap import build_system
    from infra.config import load_settings

    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": pg_url}))
    try:
        for table in ("cohortline_events", "cohortline_event_ids"):
            with pytest.raises(DBAPIError) as refused, system.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table}"))
            assert "append-only" in str(refused.value)
    finally:
        system.close()
