"""The composition root: the one place that picks concrete classes from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine

from api.context import ApiContext
from domain.application import Cohortline
from infra import migrations
from infra.audit import SqlAuditTrail
from infra.config import Settings
from infra.database import create_database_engine, read_only
from infra.eventstore import open_event_store, stored_events_table
from infra.personal_data import Erasure
from infra.rebuilds import Rebuilds
from projections.analytics import AnalyticsProjection
from projections.rfm import CutsCache
from projections.runner import ProjectionRunner
from projections.search import ElasticsearchUsers, SqlUsers
from streams.log_reader import LogReader


@dataclass
class System:
    settings: Settings
    engine: Engine
    event_store: Cohortline
    runners: list[ProjectionRunner]
    search: ElasticsearchUsers | SqlUsers
    elasticsearch: Any = None
    backends: dict[str, str] = field(default_factory=dict)

    @cached_property
    def rebuilds(self) -> Rebuilds:
        reindex = self.search.reindex if isinstance(self.search, ElasticsearchUsers) else None
        return Rebuilds(self.engine, self.log_reader(), self.runners, reindex)

    @cached_property
    def read_engine(self) -> Engine:
        """`engine` for what only reads (queries, search, the audit trail, the log): on SQLite it
        reads a snapshot instead of queueing for the write lock (infra.database.read_only)."""
        return read_only(self.engine)

    @cached_property
    def audit(self) -> SqlAuditTrail:
        return SqlAuditTrail(self.read_engine, self.event_store, stored_events_table(self.event_store))

    @cached_property
    def erasure(self) -> Erasure:
        return Erasure(self.event_store, self.event_store.mapper.keys)  # type: ignore[attr-defined]

    def log_reader(self) -> LogReader:
        """The global log, read with plain SQL rather than the library's ORM."""
        return LogReader(self.event_store, self.audit.sealed_log)

    def api_context(self, *, open_mode: bool = False) -> ApiContext:
        return ApiContext(
            event_store=self.event_store,
            read_engine=self.read_engine,
            search=self.search,
            projections=tuple(r.name for r in self.runners),
            kafka_partitions=None if self.settings.embedded else self.settings.kafka_partitions,
            api_keys=self.settings.api_keys,
            open_mode=open_mode,
            backends=self.backends,
            lifecycle=self.settings.lifecycle,
            rfm_cuts=CutsCache(self.settings.reporting_currency),
            audit=self.audit,
            read_models=self.rebuilds,
            erasure=self.erasure,
            session_secret=self.settings.session_secret,
            session_cookie_secure=self.settings.session_cookie_secure,
            segment_mapping=self.settings.segment_mapping,
            rate_limit=self.settings.rate_limit,
            rate_limit_storage=self.settings.rate_limit_storage,
        )

    def close(self) -> None:
        self.event_store.close()
        if self.elasticsearch is not None:
            self.elasticsearch.close()
        self.engine.dispose()


def prepare_schema(engine: Engine) -> None:
    """The embedded default (SQLite) migrates itself; a shared PostgreSQL is migrated by an operator
    (`cohortline migrate`), and every process refuses to start on a schema that is not current."""
    if engine.dialect.name == "sqlite":
        migrations.upgrade(engine)
    else:
        migrations.check_current(engine)


def build_system(settings: Settings) -> System:
    engine = create_database_engine(settings.database_url)
    prepare_schema(engine)
    event_store = open_event_store(engine)
    elasticsearch = None
    es_users: ElasticsearchUsers | None = None
    if settings.elasticsearch_url:
        from elasticsearch import Elasticsearch

        elasticsearch = Elasticsearch(settings.elasticsearch_url, request_timeout=30)
        es_users = ElasticsearchUsers(elasticsearch, settings.search_index)
        es_users.ensure_index()
    runners = [ProjectionRunner(engine, AnalyticsProjection(settings.lifecycle), search=es_users)]
    backends = {
        "event_store": engine.dialect.name,
        "read_models": engine.dialect.name,
        "projections": "in-process" if settings.embedded else "kafka",
        "search": "elasticsearch" if es_users else engine.dialect.name,
    }
    return System(
        settings=settings,
        engine=engine,
        event_store=event_store,
        runners=runners,
        search=es_users or SqlUsers(read_only(engine)),
        elasticsearch=elasticsearch,
        backends=backends,
    )
