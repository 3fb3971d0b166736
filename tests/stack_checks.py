"""The end check of every full-stack test that survives a fault: the read models in PostgreSQL and
the user documents in Elasticsearch equal what the independent reference computes from the log, and
nothing went to dead letters."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from elasticsearch import Elasticsearch
from sqlalchemy import Engine, select

from projections.dead_letters import dead_letters
from projections.lifecycle import STATES
from projections.records import EventRecord
from projections.rfm import SEGMENT_NAMES, rfm_cuts, segment_boxes
from projections.search import ElasticsearchUsers, SqlUsers, UserQuery, present_user
from projections.tracking import progress
from tests.analytics_checks import assert_read_models_equal_reference
from tests.properties import expected_users, user_documents


def ids(search, query: UserQuery) -> list[str]:
    """Every user id the search finds, page by page, in its order."""
    found, after = [], None
    while True:
        page = search.search(replace(query, after=after))
        found += [u["user_id"] for u in page.users]
        if page.next is None:
            return found
        after = page.next


def assert_stack_equals_reference(
    engine: Engine,
    everything: list[EventRecord],
    elasticsearch_url: str,
    index_name: str,
    partitions: int,
    start: date,
    end: date,
) -> None:
    """`everything` is the whole log; the projections must have applied all of it."""
    assert_read_models_equal_reference(engine, everything, start, end)
    with engine.connect() as conn:
        rows = user_documents(conn)
        assert conn.execute(select(dead_letters)).first() is None
        watermark = progress(conn, "analytics", partitions).watermark
        cuts = rfm_cuts(conn)
    assert {user_id: present_user(row) for user_id, row in rows.items()} == expected_users(everything)
    with Elasticsearch(elasticsearch_url) as es:
        index = ElasticsearchUsers(es, index_name)
        es.indices.refresh(index=index.index)
        assert es.count(index=index.index)["count"] == len(rows)
        for user_id in list(rows)[:50]:
            assert index.get(user_id) == rows[user_id]
        sql = SqlUsers(engine)
        for state in STATES:
            query = UserQuery(lifecycle=state, watermark=watermark, size=100)
            assert ids(index, query) == ids(sql, query), state
        for name in SEGMENT_NAMES:
            query = UserQuery(segment=segment_boxes(name, cuts), size=100)
            assert ids(index, query) == ids(sql, query), name
