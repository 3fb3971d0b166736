"""The event store's SQL wiring: eventsourcing-sqlalchemy on our engine, each event's id in a unique
column, bulk reads of many streams. The table, its extra columns and the append-only triggers are
made by the migrations (infra/migrations)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg2
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore, Transaction
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from psycopg2.extras import execute_values
from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    and_,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy_utils.types.uuid import UUIDType

from domain.application import Cohortline
from infra.chain import GENESIS, extend
from infra.database import read_only
from infra.personal_data import PersonalDataMapper, UserKeys

EVENTS_TABLE = f"{Cohortline.name}_events"

event_store_metadata = MetaData()
events_table = Table(
    # The library's stored-events table (eventsourcing_sqlalchemy.models.StoredEventRecord), plus
    # our event id (idempotency) and hash (tamper evidence) columns.
    EVENTS_TABLE,
    event_store_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("originator_id", UUIDType(), nullable=False),
    Column("originator_version", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("topic", Text(), nullable=False),
    Column("state", LargeBinary(), nullable=False),
    Column("event_id", Text().with_variant(PG_UUID(as_uuid=False), "postgresql")),
    Column("hash", Text().with_variant(CHAR(64), "postgresql")),
    Index(f"{EVENTS_TABLE}_aggregate_idx", "originator_id", "originator_version", unique=True),
    Index(f"{EVENTS_TABLE}_event_id", "event_id", unique=True),
)
READ_CHUNK = 500


class SqlWriteStore:
    """What recording needs beyond eventsourcing's recorder, in SQL (see domain.application)."""

    def __init__(self, engine: Engine, events: Table, datastore: SQLAlchemyDatastore):
        self.engine = engine
        self.events = events
        self.datastore = datastore

    @contextmanager
    def appending(self) -> Iterator[None]:
        """The library's write transaction (the recorder's own joins it), its lock taken at once:
        PostgreSQL's table lock, which every append takes, or SQLite's write lock (BEGIN
        IMMEDIATE). Reads on other connections meanwhile see every committed append."""
        with self.datastore.transaction(commit=True) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text(f"LOCK TABLE {self.events.name} IN EXCLUSIVE MODE"))
            else:
                session.connection()
            yield

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
        table = events_table
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


@contextmanager
def _as_integrity_error() -> Iterator[None]:
    """psycopg2's unique violations as eventsourcing's IntegrityError, which recording retries."""
    try:
        yield
    except psycopg2.IntegrityError as e:
        raise IntegrityError(str(e)) from e


class ReadingDatastore(SQLAlchemyDatastore):
    """The library's datastore, its read-only transactions (`commit=False`: the log's head, its
    notifications, a stream's events) on `read_only(engine)`, so they never wait for the write lock."""

    def __init__(self, engine: Engine):
        super().__init__(session_maker=sessionmaker(bind=engine))
        self.read_engine = read_only(engine)

    def transaction(self, commit: bool) -> Transaction:
        transaction = super().transaction(commit)
        if not commit and transaction.nested_level == 0:  # a new transaction, not a read inside a write
            transaction.session.bind = self.read_engine
        return transaction


def open_event_store(engine: Engine) -> Cohortline:
    """The recording application, its events in the `cohortline_events` table of `engine`."""

    datastore = ReadingDatastore(engine)
    keys = UserKeys(engine, datastore)

    class EngineFactory(SQLAlchemyFactory):
        application_recorder_class = BulkApplicationRecorder

        def __init__(self, env: Environment):
            InfrastructureFactory.__init__(self, env)
            self._schema_name = None
            self.datastore = datastore

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

    app = WiredCohortline(env={"CREATE_TABLE": "n"})  # the migrations own the table (infra.migrations)
    app.attach(SqlWriteStore(read_only(engine), stored_events_table(app), datastore))
    return app


def stored_events_table(app: Cohortline) -> Table:
    """The table holding the application's stored events, with our columns."""
    assert app.recorder.events_table_name == events_table.name  # type: ignore[attr-defined]
    return events_table
