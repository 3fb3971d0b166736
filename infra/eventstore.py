"""The event store's SQL wiring: eventsourcing-sqlalchemy on our engine, the event-id registry, bulk
reads of many streams, and the database guards that make the store append-only."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, and_, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from domain.application import Cohortline
from infra.database import schema_lock

EVENTS_TABLE = f"{Cohortline.name}_events"
READ_CHUNK = 500

write_side_metadata = MetaData()
event_ids = Table(
    "cohortline_event_ids",
    write_side_metadata,
    Column("event_id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),
)

APPEND_ONLY_TABLES = (EVENTS_TABLE, event_ids.name)


class SqlWriteStore:
    """What recording needs beyond eventsourcing's recorder, in SQL (see domain.application)."""

    def __init__(self, engine: Engine, events: Table):
        self.engine = engine
        self.events = events

    def events_after(self, versions: Mapping[UUID, int]) -> list[StoredEvent]:
        """Events of the given streams above the given versions, in stream order."""
        found: list[StoredEvent] = []
        keys = list(versions.items())
        c = self.events.c
        with self.engine.connect() as conn:
            for start in range(0, len(keys), READ_CHUNK):
                chunk = keys[start : start + READ_CHUNK]
                fresh = [k for k, v in chunk if v == 0]
                known = [(k, v) for k, v in chunk if v > 0]
                conditions = [c.originator_id.in_(fresh)] if fresh else []
                conditions += [and_(c.originator_id == k, c.originator_version > v) for k, v in known]
                query = select(c.originator_id, c.originator_version, c.topic, c.state).where(
                    or_(*conditions)
                )
                found += [
                    StoredEvent(r.originator_id, r.originator_version, r.topic, bytes(r.state))
                    for r in conn.execute(query.order_by(c.originator_id, c.originator_version))
                ]
        return found

    def seen_event_ids(self, ids: Collection[str]) -> dict[str, tuple[str, int]]:
        """`event_id → (fingerprint, position)` for the ids already recorded."""
        seen: dict[str, tuple[str, int]] = {}
        unique = sorted(set(ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), READ_CHUNK):
                query = select(event_ids).where(event_ids.c.event_id.in_(unique[start : start + READ_CHUNK]))
                seen.update({r.event_id: (r.fingerprint, r.position) for r in conn.execute(query)})
        return seen

    def remember_event_ids(self, session: Session, rows: Sequence[tuple[str, str, int]]) -> None:
        if rows:
            session.execute(
                event_ids.insert(),
                [{"event_id": e, "fingerprint": f, "position": p} for e, f, p in rows],
            )


def open_event_store(engine: Engine) -> Cohortline:
    """The recording application, its events in the `cohortline_events` table of `engine`."""

    class EngineFactory(SQLAlchemyFactory):
        def __init__(self, env: Environment):
            InfrastructureFactory.__init__(self, env)
            self._schema_name = None
            self.datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))

    class WiredCohortline(Cohortline):
        name = Cohortline.name

        def construct_factory(self, env: Environment) -> InfrastructureFactory:
            return EngineFactory(env)

    with schema_lock(engine):
        app = WiredCohortline(env={"CREATE_TABLE": "y"})
        write_side_metadata.create_all(engine)
        guard_append_only(engine)
    events_table: Any = app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    app.attach(SqlWriteStore(engine, events_table))
    return app


def guard_append_only(engine: Engine) -> None:
    """Database triggers refusing UPDATE, DELETE (and TRUNCATE) on the store's tables, for every
    client of the database, not only this application."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(_PG_REFUSE_FUNCTION))
            for table in APPEND_ONLY_TABLES:
                conn.execute(
                    text(
                        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION cohortline_refuse_change()"
                    )
                )
                conn.execute(
                    text(
                        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION cohortline_refuse_change()"
                    )
                )
        elif engine.dialect.name == "sqlite":
            for table in APPEND_ONLY_TABLES:
                for operation in ("UPDATE", "DELETE"):
                    conn.execute(
                        text(
                            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} "
                            f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} "
                            "refused'); END"
                        )
                    )


_PG_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION cohortline_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
