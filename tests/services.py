"""Fixtures' helpers for the real services started by `cohortline services up`.

A missing or unreachable service fails the test with how to start it; nothing skips."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

HOW_TO_START = (
    "start the services with `cohortline services up` and point the tests at them with "
    '`eval "$(cohortline services env)"` — or run `make test`, which does both'
)


def required_env(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: {HOW_TO_START}", pytrace=False)
    return value


def check_postgres(url: str) -> None:
    try:
        psycopg2.connect(_admin_dsn(url), connect_timeout=5).close()
    except psycopg2.Error as e:
        pytest.fail(f"PostgreSQL at {url} is unreachable ({e}): {HOW_TO_START}", pytrace=False)


def check_kafka(url: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async def list_topics() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=url.removeprefix("kafka://"), request_timeout_ms=10_000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    try:
        asyncio.run(asyncio.wait_for(list_topics(), 20))
    except Exception as e:
        pytest.fail(f"Kafka at {url} is unreachable ({e!r}): {HOW_TO_START}", pytrace=False)


def check_elasticsearch(url: str) -> None:
    from elasticsearch import Elasticsearch

    try:
        with Elasticsearch(url, request_timeout=10) as client:
            client.cluster.health(wait_for_status="yellow", timeout="10s")
    except Exception as e:
        pytest.fail(f"Elasticsearch at {url} is unreachable ({e!r}): {HOW_TO_START}", pytrace=False)


def _admin_dsn(url: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg2://", "postgresql://"))
    return urlunsplit(parts._replace(path="/postgres"))


def create_database(url: str) -> str:
    """A new empty database on the server of `url`; returns its URL."""
    name = f"cohortline_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(_admin_dsn(url))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def migrate(url: str) -> None:
    """The schema of this version of Cohortline in the database of `url`."""
    from infra import migrations
    from infra.database import create_database_engine

    engine = create_database_engine(url, pool_size=1)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    name = urlsplit(url).path.strip("/")
    conn = psycopg2.connect(_admin_dsn(url))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def delete_index(url: str, index: str) -> None:
    """Drop a test's Elasticsearch index (absent is fine)."""
    from elasticsearch import Elasticsearch

    with Elasticsearch(url) as es:
        es.options(ignore_status=404).indices.delete(index=index)
