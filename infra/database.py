"""SQLAlchemy engines for the event store and the read models."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

SQLITE_BUSY_TIMEOUT_S = 30
READ_ONLY = "cohortline_read_only"
WAL_CHECKPOINT_WAIT_MS = 1000
SCHEMA_LOCK_KEY = 0x436F686F  # "Coho"


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`. SQLite files get WAL, a busy timeout and `BEGIN IMMEDIATE` so that
    the API and the in-process projections, writing from several processes and threads, queue for
    the one write lock instead of failing; readers use `read_only(engine)` and never queue."""
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,  # a logged database error never shows a user id or a search
        executemany_mode="values_plus_batch",
        executemany_batch_page_size=500,
    )


def read_only(engine: Engine) -> Engine:
    """`engine` for transactions that only read, sharing its pool. On SQLite they begin deferred
    and refuse writes (`PRAGMA query_only`): in WAL mode they read a snapshot while a writer works,
    instead of queueing for the write lock behind appends and projection batches."""
    return engine.execution_options(**{READ_ONLY: True})


def wal_bytes(engine: Engine) -> int:
    """The size of a SQLite file's WAL file."""
    wal = Path(f"{engine.url.database}-wal")
    return wal.stat().st_size if wal.exists() else 0


def checkpoint_wal(engine: Engine) -> bool:
    """Copy a SQLite file's WAL into the database and truncate it; returns whether it could.

    SQLite's automatic checkpoints copy the WAL but start it over only when no reader is using
    it, which readers that keep overlapping prevent: under steady load it would grow without
    bound. Writers wait while this runs, so it waits at most WAL_CHECKPOINT_WAIT_MS for the writer
    and the readers in progress, and otherwise gives up until the next time."""
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(f"PRAGMA busy_timeout={WAL_CHECKPOINT_WAIT_MS}")
        try:
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    return not busy


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        reading = bool(connection.get_execution_options().get(READ_ONLY))
        _set_query_only(connection, reading)
        # A deferred transaction that has read cannot wait for the write lock: SQLite fails its
        # first write at once, whatever the busy timeout. So writers take the lock up front.
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode, which then stays with the file. Switching needs the file to itself
    and fails at once, without the busy timeout, while another connection holds a lock; once in WAL
    mode, asking again takes no lock."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _set_query_only(connection: Any, reading: bool) -> None:
    """`PRAGMA query_only` as the transaction needs it, sent only when it changes (the pool's
    connection `info` lives as long as the DBAPI connection)."""
    info = connection.connection.info
    if info.get("query_only") != reading:
        connection.exec_driver_sql(f"PRAGMA query_only={int(reading)}")
        info["query_only"] = reading
