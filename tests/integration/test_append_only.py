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
        "UPDATE cohortline_events SET event_id = NULL",
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
        with pytest.raises(DBAPIError) as refused, system.engine.begin() as conn:
            conn.execute(text("TRUNCATE cohortline_events"))
        assert "append-only" in str(refused.value)
    finally:
        system.close()
