"""Blue/green rebuilds of a projection's read models from the event store, and their verification.

A rebuild replays the log, many events per transaction, into a scratch copy of the projection's
tables (a PostgreSQL schema, or an attached SQLite file) while the live tables keep answering.
Then, in one transaction that holds the live projection's tracked positions (so the live consumer
waits): the copy catches up to the live projection's furthest position M, the copy replaces the
live tables (schemas swapped on PostgreSQL; rows copied on SQLite, which readers see only at
commit), and every live partition's tracked position becomes M. A Kafka consumer then skips what the
copy already holds and applies the rest: nothing is lost or counted twice.

Verification builds the same copy, catches it up to the live position, compares every table row by
row, and throws the copy away."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, String, Table, select

from domain.catalogue import SYSTEM_TYPES
from projections.admin import ReadModelsMoving, RebuildRunning
from projections.failures import InvalidEvent
from projections.runner import Projection
from projections.tracking import LOCAL_PARTITION, advance, lock_positions, positions, tracking
from streams.log_reader import LogReader

log = logging.getLogger(__name__)

SCRATCH = "cohortline_rebuild"
SCRATCH_LOCK = 0x636F686F72  # the advisory lock guarding the scratch schema on PostgreSQL
BATCH = 5000
MAX_DIFFERENCES = 5


@dataclass
class Progress:
    position: int = 0
    target: int = 0
    events_per_s: float = 0.0


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int
    live_checksum: str
    rebuilt_checksum: str
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.live_checksum == self.rebuilt_checksum


class ScratchCopy:
    """The projection's tables in scratch space, filled from the log, on one connection (so one
    transaction can hold the live tables and write the copy): `scratch` returns it addressing the
    copy, `live` addressing the live tables."""

    def __init__(self, engine: Engine, reader: LogReader, projection: Projection):
        self.engine = engine
        self.reader = reader
        self.projection = projection
        self._file: Path | None = None
        self._lock_file: IO[str] | None = None
        self._attached = False
        self.position = 0
        self.conn = engine.connect()
        try:
            self._claim()
        except RebuildRunning:
            self.conn.close()
            raise
        except BaseException:
            self.conn.invalidate()  # a lock taken before the failure ends with the session
            self.conn.close()
            raise
        try:
            self._create()
        except BaseException:
            self._abandon()
            raise

    @property
    def scratch(self) -> Connection:
        return self.conn.execution_options(schema_translate_map={None: SCRATCH})

    @property
    def live(self) -> Connection:
        return self.conn.execution_options(schema_translate_map=None)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _claim(self) -> None:
        """One scratch copy at a time, across processes: a rebuild and a verify would overwrite
        each other's. RebuildRunning when another holds it."""
        if self.postgres:
            held = self.live.exec_driver_sql(f"SELECT pg_try_advisory_lock({SCRATCH_LOCK})").scalar()
            self.live.commit()
        else:
            main = self.live.exec_driver_sql("PRAGMA database_list").fetchall()[0][2]
            self.live.commit()
            self._file = Path(f"{main}.{SCRATCH}")
            self._lock_file = Path(f"{main}.{SCRATCH}.lock").open("w")  # noqa: SIM115 - held until close
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                self._lock_file.close()
                self._lock_file = None
                held = False
        if not held:
            raise RebuildRunning("another rebuild or verification is using the scratch space")

    def _create(self) -> None:
        if self.postgres:
            self.live.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE")
            self.live.exec_driver_sql(f"CREATE SCHEMA {SCRATCH}")
        else:
            assert self._file is not None
            self._file.unlink(missing_ok=True)
            self._outside_transaction(f"ATTACH DATABASE '{self._file}' AS {SCRATCH}")
            self._attached = True
        self.live.commit()
        for table in (*self.projection.tables, tracking):
            table.create(self.scratch)
        self.live.commit()

    def fill(self, until: int | None = None, progress: Callable[[Progress], None] | None = None) -> None:
        """Apply the log after the copy's position, up to `until` (default: the head when called),
        one transaction per batch."""
        target = until if until is not None else self.reader.head()
        started, first = time.perf_counter(), self.position
        for records in self._prefetched(target):
            with self.live.begin():
                self._apply(records)
            if progress is not None:
                rate = (self.position - first) / max(time.perf_counter() - started, 1e-9)
                progress(Progress(self.position, target, rate))

    def _prefetched(self, target: int) -> Iterator[list[Any]]:
        """The log's batches up to `target`, each read while the one before is being applied."""
        with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as pool:
            after = self.position
            pending = (
                pool.submit(self.reader.read, after, min(BATCH, target - after)) if after < target else None
            )
            while pending is not None:
                records = pending.result()
                if not records:
                    return
                after = records[-1].position
                pending = (
                    pool.submit(self.reader.read, after, min(BATCH, target - after))
                    if after < target
                    else None
                )
                yield records

    def _apply(self, records: list[Any]) -> None:
        lock_positions(self.scratch, self.projection.name, {LOCAL_PARTITION})
        self._apply_holdable(records)
        watermark = max((r.occurred_at for r in records if r.type not in SYSTEM_TYPES), default=None)
        self.position = records[-1].position
        advance(self.scratch, self.projection.name, {LOCAL_PARTITION: (self.position, None)}, watermark)

    def _apply_holdable(self, records: list[Any]) -> None:
        """Apply what the projection can hold: an event it rejects as invalid is left out, as the
        live projection dead-letters it (projections.dead_letters)."""
        try:
            with self.scratch.begin_nested():
                self.projection.apply(self.scratch, records)
        except InvalidEvent:
            for record in records:
                with suppress(InvalidEvent), self.scratch.begin_nested():
                    self.projection.apply(self.scratch, [record])

    def catch_up_to_live(self, *, same_everywhere: bool) -> dict[int, int]:
        """Inside the caller's transaction: hold the live tracked positions and bring the copy to
        the furthest of them (a copy already further stays where it is: the live consumer will
        skip to it). Returns them."""
        held = lock_positions(self.live, self.projection.name, self._live_partitions())
        if same_everywhere and len(set(held.values())) > 1:
            raise ReadModelsMoving(f"live partitions at {sorted(set(held.values()))}")
        furthest = max([*held.values(), 0])
        if same_everywhere and furthest < self.position:
            raise ReadModelsMoving(f"the live read models ({furthest}) are behind the copy ({self.position})")
        while self.position < furthest:
            records = self.reader.read(self.position, min(BATCH, furthest - self.position))
            self._apply(records)
        return held

    def _live_partitions(self) -> set[int]:
        query = select(tracking.c.partition).where(tracking.c.projection == self.projection.name)
        return set(self.live.execute(query).scalars()) or {LOCAL_PARTITION}

    def switch(self) -> int:
        """Replace the live tables with the copy; returns the position the live tables now hold."""
        with self.live.begin():
            held = self.catch_up_to_live(same_everywhere=False)
            watermark = self.scratch.execute(
                select(tracking.c.watermark).where(
                    tracking.c.projection == self.projection.name, tracking.c.partition == LOCAL_PARTITION
                )
            ).scalar()
            if self.postgres:
                self._swap_schemas()
            else:
                self._copy_rows()
            self.live.execute(
                tracking.update()
                .where(tracking.c.projection == self.projection.name, tracking.c.partition.in_(held))
                .values(position=self.position, watermark=watermark)
            )
        return self.position

    def _swap_schemas(self) -> None:
        live_schema = self.live.exec_driver_sql("SELECT current_schema()").scalar()
        retired = f"{SCRATCH}_retired"
        self.live.exec_driver_sql(f"DROP SCHEMA IF EXISTS {retired} CASCADE")
        self.live.exec_driver_sql(f"CREATE SCHEMA {retired}")
        for table in self.projection.tables:
            self.live.exec_driver_sql(f"LOCK TABLE {live_schema}.{table.name} IN ACCESS EXCLUSIVE MODE")
        for table in self.projection.tables:
            self.live.exec_driver_sql(f"ALTER TABLE {live_schema}.{table.name} SET SCHEMA {retired}")
            self.live.exec_driver_sql(f"ALTER TABLE {SCRATCH}.{table.name} SET SCHEMA {live_schema}")
        self.live.exec_driver_sql(f"DROP SCHEMA {retired} CASCADE")

    def _copy_rows(self) -> None:
        for table in self.projection.tables:
            self.live.exec_driver_sql(f"DELETE FROM main.{table.name}")
            self.live.exec_driver_sql(f"INSERT INTO main.{table.name} SELECT * FROM {SCRATCH}.{table.name}")

    def _outside_transaction(self, statement: str) -> None:
        """SQLite refuses ATTACH and DETACH inside a transaction, which SQLAlchemy would begin."""
        self.live.connection.driver_connection.execute(statement)  # type: ignore[union-attr]

    def compare(self) -> list[TableCheck]:
        """Inside the caller's transaction, every table of the copy against the live one."""
        return [self._compare(table) for table in self.projection.tables]

    def _compare(self, table: Table) -> TableCheck:
        keys = list(table.primary_key.columns)
        # Both sides streamed in code-point order of their keys, which is the order Python compares.
        order = [k.collate("C") if self.postgres and isinstance(k.type, String) else k for k in keys]
        query = select(table).order_by(*order).execution_options(stream_results=True, max_row_buffer=2000)
        if "users" in table.c:  # a count cell that fell back to zero is the same as one never made
            query = query.where(table.c.users != 0)
        live = (tuple(r) for r in self.live.execute(query))
        rebuilt = (tuple(r) for r in self.scratch.execute(query))
        live_hash, rebuilt_hash, rows = hashlib.sha256(), hashlib.sha256(), 0
        differences: list[dict[str, Any]] = []
        for a, b in _merge(live, rebuilt, len(keys)):
            if a is not None:
                live_hash.update(repr(a).encode())
                rows += 1
            if b is not None:
                rebuilt_hash.update(repr(b).encode())
            if a != b and len(differences) < MAX_DIFFERENCES:
                key = (a or b)[: len(keys)]  # type: ignore[index]
                differences.append(
                    {
                        "key": dict(zip([k.name for k in keys], map(str, key), strict=True)),
                        "live": _jsonable(table, a),
                        "rebuilt": _jsonable(table, b),
                    }
                )
        return TableCheck(table.name, rows, live_hash.hexdigest(), rebuilt_hash.hexdigest(), differences)

    def close(self) -> None:
        """Drop the copy, then give back the connection and the lock, even when dropping fails."""
        try:
            self._drop()
            if self.postgres:
                self.live.exec_driver_sql(f"SELECT pg_advisory_unlock({SCRATCH_LOCK})")
                self.live.commit()
        except BaseException:
            self.conn.invalidate()  # its session ends, and the advisory lock or attachment with it
            raise
        finally:
            self.conn.close()
            if self._file is not None:
                self._file.unlink(missing_ok=True)
            if self._lock_file is not None:
                self._lock_file.close()

    def _drop(self) -> None:
        if self.live.in_transaction():
            self.live.rollback()
        if self.postgres:
            self.live.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE")
            self.live.commit()
        elif self._attached:
            self.live.commit()
            self._outside_transaction(f"DETACH DATABASE {SCRATCH}")

    def _abandon(self) -> None:
        """Close a copy whose making failed, keeping the error that made it fail."""
        try:
            self.close()
        except Exception:
            log.exception("could not clean up the scratch copy of %s", self.projection.name)


def _merge(live: Iterator[tuple], rebuilt: Iterator[tuple], width: int) -> Iterator[tuple[Any, Any]]:
    """Pairs of rows with the same key from two key-ordered streams (None where one lacks it)."""
    a, b = next(live, None), next(rebuilt, None)
    while a is not None or b is not None:
        ka = a[:width] if a is not None else None
        kb = b[:width] if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            yield a, None
            a = next(live, None)
        elif ka is None or kb < ka:
            yield None, b
            b = next(rebuilt, None)
        else:
            yield a, b
            a, b = next(live, None), next(rebuilt, None)


def _jsonable(table: Table, row: tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        c.name: (v if isinstance(v, (int, str, type(None))) else str(v))
        for c, v in zip(table.columns, row, strict=True)
    }


def rebuild(
    engine: Engine,
    reader: LogReader,
    projection: Projection,
    progress: Callable[[Progress], None] | None = None,
    reindex: Callable[[Connection], None] | None = None,
) -> int:
    """Rebuild the projection's read models beside the live ones and switch; returns the position
    the new read models hold. `reindex` then refreshes the search documents from them."""
    copy = ScratchCopy(engine, reader, projection)
    try:
        copy.fill(progress=progress)
        copy.fill(progress=progress)  # what arrived during the first pass, outside the switch's lock
        position = copy.switch()
    finally:
        copy.close()
    if reindex is not None:
        with engine.connect() as conn:
            reindex(conn)
    log.info("rebuild of %s switched at position %s", projection.name, position)
    return position


def verify(
    engine: Engine, reader: LogReader, projection: Projection, attempts: int = 30
) -> tuple[int, list[TableCheck]]:
    """Rebuild into scratch space and compare with the live read models at the live position;
    returns (position, checks). Raises ReadModelsMoving when the live partitions never line up."""
    copy = ScratchCopy(engine, reader, projection)
    try:
        with engine.connect() as conn:
            live = positions(conn, projection.name)
        copy.fill(until=min(live.values(), default=0))
        attempt = 1
        while True:
            try:
                with copy.live.begin():
                    copy.catch_up_to_live(same_everywhere=True)
                    return copy.position, copy.compare()
            except ReadModelsMoving:
                if attempt == attempts:
                    raise
            attempt += 1
            time.sleep(1)
    finally:
        copy.close()
