"""The read models equal the reference definitions of metrics.md for random histories that POST
/v1/events would accept, whatever order the events arrive in and however they are batched, on the
embedded SQLite file and on PostgreSQL.

The engine is made once per test and the read models are emptied before each example (`project`),
so hypothesis may share the function-scoped fixture between examples."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api.app import create_app
from infra import migrations
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.database import create_database_engine
from tests.analytics_checks import RETENTION_CASES, assert_read_models_equal_reference
from tests.properties import (
    arrivals,
    expected_users,
    histories,
    project,
    projected_users,
    recorded,
    reference_events,
)

ONE_ENGINE = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["sqlite", "postgresql"])
def read_models(request, tmp_path) -> Iterator[Engine]:
    """Migrated, empty read models on each storage."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_engine")
        return
    engine = create_database_engine(f"sqlite:///{tmp_path / 'read-models.db'}")
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@settings(ONE_ENGINE, max_examples=200)
@given(data=st.data())
def test_every_answer_equals_the_definitions_whatever_the_arrival_order(read_models, data):
    envelopes = data.draw(histories(max_events=120, spans=(7, 35, 140)))
    project(read_models, data.draw(arrivals(recorded(envelopes))))
    cases = data.draw(st.lists(st.sampled_from(RETENTION_CASES), min_size=12, max_size=12, unique=True))
    assert_read_models_equal_reference(read_models, reference_events(envelopes), retention_cases=cases)


@settings(ONE_ENGINE, max_examples=250)
@given(data=st.data())
def test_user_state_equals_the_definitions_whatever_the_arrival_order(read_models, data):
    envelopes = data.draw(histories(max_events=100, spans=(7, 60, 400)))
    batches = data.draw(arrivals(recorded(envelopes)))
    assert projected_users(read_models, batches) == expected_users(reference_events(envelopes))


@settings(deadline=None, max_examples=10)
@given(envelopes=histories(max_events=100))
def test_the_histories_are_what_post_events_accepts_and_the_log_gives_back(envelopes):
    with tempfile.TemporaryDirectory() as directory:
        env = {"COHORTLINE_DATABASE_URL": f"sqlite:///{directory}/c.db", "COHORTLINE_API_KEYS": "p:producer"}
        system = build_system(load_settings(env))
        try:
            client = create_app(system.api_context()).test_client()
            for index, envelope in enumerate(envelopes):
                response = client.post(
                    "/v1/events", json={"events": [envelope]}, headers={"Authorization": "Bearer p"}
                )
                assert response.status_code == 201, (index, response.json)
            assert _content(system.log_reader().read(0, 10_000)) == _content(recorded(envelopes))
        finally:
            system.close()


PERSONAL = ("attributes", "subject", "comment", "properties")
"""events.md: personal data, which the log gives sealed (crypto-shredding) and no number reads."""


def _content(records: list) -> list[tuple]:
    fields = (
        "position",
        "type",
        "event_id",
        "stream_id",
        "stream_version",
        "user_id",
        "occurred_at",
        "context",
    )
    return [
        (*(getattr(r, name) for name in fields), {k: v for k, v in r.data.items() if k not in PERSONAL})
        for r in records
    ]
