from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import services


@dataclass(frozen=True)
class ServiceUrls:
    database: str
    kafka: str
    elasticsearch: str


@pytest.fixture(scope="session")
def service_urls() -> ServiceUrls:
    urls = ServiceUrls(
        database=services.required_env("COHORTLINE_DATABASE_URL"),
        kafka=services.required_env("COHORTLINE_KAFKA_URL"),
        elasticsearch=services.required_env("COHORTLINE_ELASTICSEARCH_URL"),
    )
    services.check_postgres(urls.database)
    services.check_kafka(urls.kafka)
    services.check_elasticsearch(urls.elasticsearch)
    return urls


@pytest.fixture
def pg_url(service_urls: ServiceUrls):
    """A fresh PostgreSQL database for one test, migrated as `cohortline migrate` does."""
    url = services.create_database(service_urls.database)
    services.migrate(url)
    yield url
    services.drop_database(url)


@pytest.fixture
def empty_pg_url(service_urls: ServiceUrls):
    """A fresh PostgreSQL database for one test, without any schema."""
    url = services.create_database(service_urls.database)
    yield url
    services.drop_database(url)


@pytest.fixture
def full_stack_env(service_urls: ServiceUrls, pg_url: str) -> Iterator[dict[str, str]]:
    """Environment for cohortline processes on the real services, isolated by database, topic and index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env.update(
        COHORTLINE_DATABASE_URL=pg_url,
        COHORTLINE_KAFKA_URL=service_urls.kafka,
        COHORTLINE_ELASTICSEARCH_URL=service_urls.elasticsearch,
        COHORTLINE_KAFKA_TOPIC=services.unique_name("cohortline.test"),
        COHORTLINE_ELASTICSEARCH_INDEX=services.unique_name("cohortline-test-users"),
    )
    yield env
    services.delete_index(service_urls.elasticsearch, env["COHORTLINE_ELASTICSEARCH_INDEX"])
