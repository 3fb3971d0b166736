"""The auditors' reads of the event store, in SQL: a stream's history, the global log in pages or
as an unbounded iterator in constant memory, and the walk of the tamper-evidence chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine, Row, Select, String, Table, cast, func, select, text

from domain.application import Cohortline
from domain.audit import AuditedEvent
from domain.events import Fact
from infra.chain import ChainedRow, UnreadableRow, Verdict, verify

CHUNK = 2000
PROGRESS_EVERY = 100_000

T = TypeVar("T")
ReadRows = Callable[[int, int], list[Row[Any]]]


class SqlAuditTrail:
    def __init__(self, engine: Engine, event_store: Cohortline, events: Table):
        self.engine = engine
        self.event_store = event_store
        self.events = events

    def head(self) -> int:
        """The last position, read without reading its row (which may be malformed)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(self.events.c.id))).scalar() or 0

    def stream(self, stream_id: UUID) -> list[AuditedEvent]:
        """The stream's events in version order."""
        c = self.events.c
        query = self._columns().where(c.originator_id == stream_id).order_by(c.originator_version)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._audited(row) for row in rows]  # decoded after the read: it may look up keys

    def log(self, after: int, limit: int) -> list[AuditedEvent]:
        """Up to `limit` events of the global log above position `after`, in order."""
        return [self._audited(row) for row in self._rows(after, limit)]

    def sealed_log(self, after: int, limit: int) -> list[AuditedEvent]:
        """As `log`, with personal fields left sealed (for projections and the relay)."""
        return [self._audited(row, sealed=True) for row in self._rows(after, limit)]

    def follow(self, after: int = 0) -> Iterator[AuditedEvent]:
        """Every event above `after`, read a chunk at a time (constant memory)."""
        for row in self._chunked(self._rows, after):
            yield self._audited(row)

    def verify(self, progress: Callable[[int], None] | None = None) -> Verdict:
        """Walk the chain; `progress` is told the position reached every PROGRESS_EVERY events.
        Rows are read as the database holds them, so a malformed one breaks the chain instead of
        raising."""
        sqlite = self.engine.dialect.name == "sqlite"
        query = text((_SQLITE_STORED if sqlite else _POSTGRES_STORED).format(table=self.events.name))
        chained = _sqlite_chained if sqlite else _postgres_chained

        def read(after: int, limit: int) -> list[Row[Any]]:
            with self.engine.connect() as conn:
                return list(conn.execute(query, {"after": after, "limit": limit}).all())

        return verify(chained(row) for row in _reporting(self._chunked(read, 0), progress))

    def _columns(self) -> Select[Any]:
        c = self.events.c
        event_id = cast(c.event_id, String).label("event_id")  # text: skips the driver's UUID parsing
        return select(c.id, c.originator_id, c.originator_version, c.topic, c.state, event_id, c.hash)

    def _rows(self, after: int, limit: int) -> list[Row[Any]]:
        c = self.events.c
        query = self._columns().where(c.id > after).order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def _chunked(self, read: ReadRows, after: int) -> Iterator[Row[Any]]:
        while True:
            rows = read(after, CHUNK)
            yield from rows
            if len(rows) < CHUNK:
                return
            after = rows[-1].id

    def _audited(self, row: Row[Any], sealed: bool = False) -> AuditedEvent:
        stored = StoredEvent(row.originator_id, row.originator_version, row.topic, bytes(row.state))
        mapper = self.event_store.mapper
        fact = mapper.to_sealed_domain_event(stored) if sealed else mapper.to_domain_event(stored)
        assert isinstance(fact, Fact)
        return AuditedEvent(row.id, row.hash, fact)


def _reporting(rows: Iterator[Row[Any]], progress: Callable[[int], None] | None) -> Iterator[Row[Any]]:
    for n, row in enumerate(rows, start=1):
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(row.id)
        yield row


_CHAINED = ("originator_id", "originator_version", "topic", "state", "event_id", "hash")

# Each value's storage class and bytes, whatever the column's declared type: the driver then has
# nothing to decode (TEXT that is not UTF-8 would make it raise).
_SQLITE_STORED = (
    "SELECT id, "
    + ", ".join(f"typeof({name}) AS {name}_class, CAST({name} AS BLOB) AS {name}" for name in _CHAINED)
    + " FROM {table} WHERE id > :after ORDER BY id LIMIT :limit"
)

# The uuid columns as text, the others as the driver gives them.
_POSTGRES_STORED = (
    "SELECT id, originator_id::text AS originator_id, originator_version, topic, state, "
    "event_id::text AS event_id, hash FROM {table} WHERE id > :after ORDER BY id LIMIT :limit"
)


@dataclass(frozen=True)
class _NotUtf8:
    """SQLite TEXT whose bytes are not UTF-8."""

    stored: bytes


class _Unreadable(Exception):
    """A stored value that cannot be part of what any event's hash was computed over."""


def _sqlite_chained(row: Row[Any]) -> ChainedRow | UnreadableRow:
    stored = row._mapping
    values = {name: _sqlite_value(stored[f"{name}_class"], stored[name]) for name in _CHAINED}
    return _chained(row.id, values, _stream_id_from_bytes)


def _postgres_chained(row: Row[Any]) -> ChainedRow | UnreadableRow:
    return _chained(row.id, row._mapping, _stream_id_from_text)


def _sqlite_value(storage_class: str, stored: bytes | None) -> object:
    """The Python value of one SQLite value, read as its storage class and bytes."""
    if stored is None:
        return None
    if storage_class == "integer":
        return int(stored)
    if storage_class == "real":
        return float(stored)
    if storage_class == "text":
        try:
            return stored.decode()
        except UnicodeDecodeError:
            return _NotUtf8(stored)
    return stored


def _chained(
    position: int, values: Mapping[str, object], stream_id: Callable[[object], str]
) -> ChainedRow | UnreadableRow:
    """The row's content as the chain hashes it, or why it cannot be."""
    try:
        return ChainedRow(
            position,
            stream_id(values["originator_id"]),
            _typed(values["originator_version"], int, "version", "an integer"),
            _typed(values["topic"], str, "topic", "text"),
            _state(values["state"]),
            _optional_text(values["event_id"], "id"),
            _optional_text(values["hash"], "hash"),
        )
    except _Unreadable as unreadable:
        return UnreadableRow(position, str(unreadable))


def _stream_id_from_bytes(value: object) -> str:
    """SQLite holds a stream id as its 16 bytes (sqlalchemy_utils' UUIDType)."""
    stored = _typed(value, bytes, "stream id", "a 16-byte UUID")
    if len(stored) != 16:
        raise _Unreadable(f"the event's stream id is {len(stored)} bytes, not a 16-byte UUID")
    return str(UUID(bytes=stored))


def _stream_id_from_text(value: object) -> str:
    """PostgreSQL's uuid as text: a UUID in canonical form, unless the column was changed."""
    stored = _typed(value, str, "stream id", "a UUID")
    with suppress(ValueError):
        if str(UUID(stored)) == stored:
            return stored
    raise _Unreadable("the event's stream id is not a UUID")


def _state(value: object) -> bytes:
    if isinstance(value, memoryview):  # psycopg2's bytea
        return bytes(value)
    return _typed(value, bytes, "state", "bytes")


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _typed(value, str, what, "text")


def _typed(value: object, expected: type[T], what: str, wanted: str) -> T:
    if isinstance(value, expected):
        return value
    if value is None:
        raise _Unreadable(f"the event's {what} is missing")
    raise _Unreadable(f"the event's {what} is {_kind(value)}, not {wanted}")


_KINDS: dict[type, str] = {
    str: "TEXT",
    _NotUtf8: "TEXT that is not UTF-8",
    bytes: "a BLOB",
    memoryview: "a BLOB",
    int: "an INTEGER",
    float: "a REAL",
}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)
