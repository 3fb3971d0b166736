"""SQLAlchemy engines for the event store and the read models, and the event store's wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

from domain.application import Cohortline

SQLITE_BUSY_TIMEOUT_S = 30


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`. SQLite files get WAL, a busy timeout and `BEGIN IMMEDIATE` so that
    the API and the in-process projections, writing from several threads, queue instead of failing."""
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_event_store(engine: Engine) -> Cohortline:
    """The recording application, its stored events in the `cohortline_events` table of `engine`."""

    class EngineFactory(SQLAlchemyFactory):
        def __init__(self, env: Environment):
            InfrastructureFactory.__init__(self, env)
            self._schema_name = None
            self.datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))

    class WiredCohortline(Cohortline):
        name = Cohortline.name

        def construct_factory(self, env: Environment) -> InfrastructureFactory:
            return EngineFactory(env)

    return WiredCohortline(env={"CREATE_TABLE": "y"})
