"""The event store's SQL wiring: eventsourcing-sqlalchemy on our engine, each event's id in a unique
column, bulk reads of many streams, and the database guards that make the store append-only."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any
from uuid import UUID

import psycopg2
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from psycopg2.extras import execute_values
from sqlalchemy import Column, Engine, MetaData, String, Table, and_, insert, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from domain.application import Cohortline
from infra.chain import GENESIS, extend
from infra.database import schema_lock
from infra.personal_data import PersonalDataMapper, UserKeys

EVENTS_TABLE = f"{Cohortline.name}_events"
READ_CHUNK = 500


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

    def seen_event_ids(self, ids: Collection[str]) -> dict[str, tuple[int, StoredEvent]]:
        """`event_id → (position, stored event)` for the ids already recorded."""
        seen: dict[str, tuple[int, StoredEvent]] = {}
        unique = sorted(set(ids))
        c = self.events.c
        with self.engine.connect() as conn:
            for start in range(0, len(unique), READ_CHUNK):
                query = select(
                    c.event_id, c.id, c.originator_id, c.originator_version, c.topic, c.state
                ).where(c.event_id.in_(unique[start : start + READ_CHUNK]))
                for r in conn.execute(query):
                    stored = StoredEvent(r.originator_id, r.originator_version, r.topic, bytes(r.state))
                    seen[str(r.event_id)] = (r.id, stored)
        return seen


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """The library's recorder, inserting a whole batch with one statement instead of an ORM object
    per event, and keeping each event's id in a uniquely indexed column. Same table lock (insert
    order = commit order), same NOTIFY."""

    _sequence: str | None = None

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        event_ids: Sequence[str] = kwargs["event_ids"]
        self._lock_table(session)
        with _as_integrity_error():
            if session.get_bind().dialect.name == "postgresql":
                ids = self._insert_postgres(session, stored_events, event_ids)
            else:
                ids = self._insert_portable(session, stored_events, event_ids)
        self._notify_channel(session)
        return ids

    def _insert_postgres(
        self, session: Session, events: Sequence[StoredEvent], event_ids: Sequence[str]
    ) -> list[int]:
        """Positions drawn from the sequence while the table lock is held (so they are in commit
        order), then one multi-row INSERT per page."""
        cursor = session.connection().connection.cursor()
        if self._sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (self.events_table_name,))
            self._sequence = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", (self._sequence, len(events)))
        ids = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(f"SELECT hash FROM {self.events_table_name} ORDER BY id DESC LIMIT 1")
        last = cursor.fetchone()
        rows = _chained(last[0] if last else GENESIS, ids, events, event_ids)
        execute_values(
            cursor,
            f"INSERT INTO {self.events_table_name} "
            "(id, originator_id, originator_version, topic, state, event_id, hash) VALUES %s",
            rows,
            template="(%s, %s::uuid, %s, %s, %s, %s::uuid, %s)",
            page_size=1000,
        )
        return ids

    def _insert_portable(
        self, session: Session, events: Sequence[StoredEvent], event_ids: Sequence[str]
    ) -> list[int]:
        """Positions assigned here, after the last one, under SQLite's write lock (BEGIN IMMEDIATE)."""
        table = _with_event_id(self.events_record_cls.__table__)  # type: ignore[attr-defined]
        last = session.execute(select(table.c.id, table.c.hash).order_by(table.c.id.desc()).limit(1)).first()
        start = last.id + 1 if last else 1
        ids = list(range(start, start + len(events)))
        names = ("id", "originator_id", "originator_version", "topic", "state", "event_id", "hash")
        rows = _chained(last.hash if last else GENESIS, ids, events, event_ids)
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return ids


def _chained(
    previous: str, ids: Sequence[int], events: Sequence[StoredEvent], event_ids: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The rows to insert, each with its hash chained after `previous` (infra.chain)."""
    rows = [
        (i, str(e.originator_id), e.originator_version, e.topic, e.state, str(event_id))
        for i, e, event_id in zip(ids, events, event_ids, strict=True)
    ]
    return [(*row, hash_) for row, hash_ in zip(rows, extend(previous, rows), strict=True)]


@cache
def _with_event_id(table: Table) -> Table:
    """The library's events table as it is in the database: with our `event_id` and `hash`
    columns."""
    if "event_id" in table.c:
        return table
    extended = Table(
        table.name,
        MetaData(),
        *(c._copy() for c in table.columns),
        Column("event_id", String(36)),
        Column("hash", String(64)),
    )
    return extended


@contextmanager
def _as_integrity_error() -> Iterator[None]:
    """psycopg2's unique violations as eventsourcing's IntegrityError, which recording retries."""
    try:
        yield
    except psycopg2.IntegrityError as e:
        raise IntegrityError(str(e)) from e


def open_event_store(engine: Engine) -> Cohortline:
    """The recording application, its events in the `cohortline_events` table of `engine`."""

    keys = UserKeys(engine)

    class EngineFactory(SQLAlchemyFactory):
        application_recorder_class = BulkApplicationRecorder

        def __init__(self, env: Environment):
            InfrastructureFactory.__init__(self, env)
            self._schema_name = None
            self.datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))

        def mapper(self, transcoder: Any = None, mapper_class: Any = None) -> PersonalDataMapper:
            mapper = PersonalDataMapper(
                transcoder=transcoder or self.transcoder(), cipher=self.cipher(), compressor=self.compressor()
            )
            mapper.keys = keys
            return mapper

    class WiredCohortline(Cohortline):
        name = Cohortline.name

        def construct_factory(self, env: Environment) -> InfrastructureFactory:
            return EngineFactory(env)

    with schema_lock(engine):
        app = WiredCohortline(env={"CREATE_TABLE": "y"})
        add_event_id_column(engine)
        add_hash_column(engine)
        guard_append_only(engine)
    app.attach(SqlWriteStore(engine, stored_events_table(app)))
    return app


def stored_events_table(app: Cohortline) -> Table:
    """The table holding the application's stored events, with our columns."""
    return _with_event_id(app.recorder.events_record_cls.__table__)  # type: ignore[attr-defined]


def add_event_id_column(engine: Engine) -> None:
    """Each event's sender-chosen id, unique: what makes appends idempotent."""
    _add_column(engine, "event_id", postgres_type="uuid")
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENTS_TABLE}_event_id ON {EVENTS_TABLE} (event_id)")
        )


def add_hash_column(engine: Engine) -> None:
    """Each event's link in the tamper-evidence chain (infra.chain)."""
    _add_column(engine, "hash", postgres_type="char(64)")


def _add_column(engine: Engine, name: str, *, postgres_type: str) -> None:
    """Add a column of ours to the library's events table, once."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN IF NOT EXISTS {name} {postgres_type}"))
        elif name not in {row[1] for row in conn.execute(text(f"PRAGMA table_info({EVENTS_TABLE})"))}:
            conn.execute(text(f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN {name} TEXT"))


def guard_append_only(engine: Engine) -> None:
    """Database triggers refusing UPDATE, DELETE (and TRUNCATE) of stored events, for every client
    of the database, not only this application."""
    table = EVENTS_TABLE
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(_PG_REFUSE_FUNCTION))
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
        else:
            for operation in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
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
