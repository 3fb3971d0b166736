"""The user index on the real Elasticsearch: made once however many processes start together, and
any other refusal to make it is raised, not taken for "already exists"."""

from __future__ import annotations

import threading
import uuid

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from projections.search import ElasticsearchUsers
from tests import services


@pytest.fixture
def es(service_urls):
    with Elasticsearch(service_urls.elasticsearch, request_timeout=30) as client:
        yield client


@pytest.fixture
def index(service_urls):
    name = services.unique_name("cohortline-test-users")
    yield name
    services.delete_index(service_urls.elasticsearch, name)


def test_concurrent_ensure_index_calls_all_succeed(es, index):
    racers = 4
    barrier = threading.Barrier(racers)
    failures: list[BaseException] = []

    def ensure() -> None:
        barrier.wait()
        try:
            ElasticsearchUsers(es, index).ensure_index()
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=ensure) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert es.indices.get_mapping(index=index)[index]["mappings"]["dynamic"] == "strict"
    ElasticsearchUsers(es, index).ensure_index()  # and again, once it exists


@pytest.mark.parametrize(
    "name",
    [
        f"cohortline-TEST-{uuid.uuid4().hex[:10]}",
        # the refusal quotes the name: it must not be mistaken for "already exists" by its text
        f"resource_already_exists_exception-TEST-{uuid.uuid4().hex[:10]}",
    ],
)
def test_an_invalid_index_name_raises(es, name):
    with pytest.raises(BadRequestError) as caught:
        ElasticsearchUsers(es, name).ensure_index()
    assert caught.value.error == "invalid_index_name_exception"
    assert not es.indices.exists(index=name.lower())
