"""A document the real Elasticsearch rejects for its mapping is dead-lettered (not retried forever),
the stream moves on, and once the mapping is fixed `cohortline dead-letters retry` indexes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from elasticsearch import Elasticsearch
from sqlalchemy import select

from infra.bootstrap import build_system
from infra.config import load_settings
from projections.dead_letters import dead_letters
from projections.search import ElasticsearchUsers
from projections.tracking import LOCAL_PARTITION, positions
from streams.local import LocalFollower
from tests import services
from tests.integration.test_projection_failures import assert_read_models_hold, envelopes, user_rows

USER = "u3"
"""The one user with a country (tests.integration.test_projection_failures.envelopes)."""


@pytest.fixture
def settings(pg_url, service_urls):
    index = services.unique_name("cohortline-test-rejects")
    env = {
        "COHORTLINE_DATABASE_URL": pg_url,
        "COHORTLINE_ELASTICSEARCH_URL": service_urls.elasticsearch,
        "COHORTLINE_ELASTICSEARCH_INDEX": index,
    }
    yield env
    services.delete_index(service_urls.elasticsearch, index)


def test_a_document_rejected_for_its_mapping_is_dead_lettered_and_retried_once_fixed(settings):
    es = Elasticsearch(settings["COHORTLINE_ELASTICSEARCH_URL"])
    index = settings["COHORTLINE_ELASTICSEARCH_INDEX"]
    es.indices.create(index=index, mappings={"properties": {"country": {"type": "integer"}}})
    system = build_system(load_settings(settings))
    try:
        system.event_store.record(envelopes())
        events = system.log_reader().read(0, 10_000)
        LocalFollower(system.log_reader(), system.runners).catch_up()

        with system.engine.connect() as conn:
            assert positions(conn, "analytics")[LOCAL_PARTITION] == len(events)
            letters = conn.execute(select(dead_letters).order_by(dead_letters.c.position)).mappings().all()
        rejected = [e for e in events if e.context.get("country")]
        assert rejected and {e.user_id for e in rejected} == {USER}
        assert [(d["position"], d["kind"]) for d in letters] == [
            (e.position, "document_rejected") for e in rejected
        ]
        assert all("failed to parse field [country]" in d["reason"] for d in letters)
        es.indices.refresh(index=index)
        search = ElasticsearchUsers(es, index)
        rows = user_rows(system)
        assert rows[USER]["country"] is None, "only the events that set the country were rejected"
        assert all(search.get(user_id) == row for user_id, row in rows.items())

        es.indices.delete(index=index)  # the mapping fixed
        system.search.ensure_index()
        done = retry(settings)
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["outcome"] for line in done.stdout.decode().splitlines()] == [
            "applied"
        ] * len(rejected)
        assert_read_models_hold(system, events)
        es.indices.refresh(index=index)
        assert search.get(USER) == user_rows(system)[USER] and search.get(USER)["country"] == "GB"
    finally:
        system.close()
        es.close()


def retry(settings: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "dead-letters", "retry"],
        env={**env, **settings},
        capture_output=True,
        timeout=120,
        check=False,
    )
