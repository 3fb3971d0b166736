"""Operators' rebuilds and verification of the read models (api.md "Admin"), run from the API or the
command line; progress is kept in a table so any API process can report it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Engine, Float, MetaData, String, Table, Text, or_, select

from domain.envelope import format_timestamp
from projections.admin import RebuildRunning, UnknownProjection
from projections.runner import ProjectionRunner
from projections.sql import upsert
from streams.log_reader import LogReader
from streams.rebuild import Progress, rebuild, verify

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=2)
"""A running rebuild that reported nothing for this long died with its process."""

rebuild_metadata = MetaData()
rebuilds = Table(
    "projection_rebuilds",
    rebuild_metadata,
    Column("projection", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("target", BigInteger, nullable=False),
    Column("events_per_s", Float, nullable=False),
    Column("started_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    Column("finished_at", DateTime()),
    Column("error", Text),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Rebuilds:
    def __init__(
        self,
        engine: Engine,
        reader: LogReader,
        runners: list[ProjectionRunner],
        reindex: Callable[[Any], None] | None = None,
    ):
        self.engine = engine
        self.reader = reader
        self.runners = {r.name: r for r in runners}
        self.reindex = reindex

    def status(self, name: str) -> dict[str, Any] | None:
        self._runner(name)
        with self.engine.connect() as conn:
            row = conn.execute(select(rebuilds).where(rebuilds.c.projection == name)).mappings().first()
        if row is None:
            return None
        state = row["state"]
        if state == "running" and _now() - row["updated_at"] > STALE_AFTER:
            state = "abandoned"
        return {
            "name": name,
            "state": state,
            "position": row["position"],
            "target": row["target"],
            "events_per_s": round(row["events_per_s"]),
            "started_at": format_timestamp(row["started_at"]),
            "updated_at": format_timestamp(row["updated_at"]),
            "finished_at": format_timestamp(row["finished_at"]),
            "error": row["error"],
        }

    def start(self, name: str) -> dict[str, Any]:
        """Begin a rebuild in a background thread; RebuildRunning when one is under way."""
        self._runner(name)
        self._begin(name)
        threading.Thread(target=self._run, args=(name, None), name=f"rebuild-{name}", daemon=True).start()
        return self.status(name)  # type: ignore[return-value]

    def run(self, name: str, progress: Callable[[Progress], None] | None = None) -> int:
        """Rebuild now, in this thread, recording progress; returns the position switched at.
        RebuildRunning when one is under way."""
        self._runner(name)
        self._begin(name)
        return self._run(name, progress)

    def _begin(self, name: str) -> None:
        """Claim the projection's row in one statement, only if it is absent, finished, or running but
        stale: of rebuilds started at once, in any processes, exactly one gets it. RebuildRunning for
        the others."""
        now = _now()
        values = {"projection": name, "state": "running", "position": 0, "target": self.reader.head(),
                  "events_per_s": 0.0, "started_at": now, "updated_at": now, "finished_at": None,
                  "error": None}  # fmt: skip
        with self.engine.begin() as conn:
            insert = upsert(conn, rebuilds).values(**values)
            claim = insert.on_conflict_do_update(
                index_elements=[rebuilds.c.projection],
                set_={column: insert.excluded[column] for column in values if column != "projection"},
                where=or_(rebuilds.c.state != "running", rebuilds.c.updated_at < now - STALE_AFTER),
            )
            claimed = conn.execute(claim.returning(rebuilds.c.projection)).first()
        if claimed is None:
            raise RebuildRunning(f"a rebuild of {name!r} is already under way")

    def _run(self, name: str, progress: Callable[[Progress], None] | None) -> int:
        runner = self._runner(name)

        def report(p: Progress) -> None:
            self._save(name, position=p.position, target=p.target, events_per_s=p.events_per_s)
            if progress is not None:
                progress(p)

        try:
            position = rebuild(self.engine, self.reader, runner.projection, report, self.reindex)
        except Exception as e:
            log.exception("rebuild of %s failed", name)
            self._save(name, state="failed", finished_at=_now(), error=f"{type(e).__name__}: {e}")
            raise
        self._save(name, state="switched", position=position, finished_at=_now())
        return position

    def verify(self) -> dict[str, Any]:
        """Every projection rebuilt into scratch space and compared with the live one."""
        checked, differences, position = [], [], 0
        for name, runner in self.runners.items():
            position, checks = verify(self.engine, self.reader, runner.projection)
            checked.append(
                {
                    "name": name,
                    "position": position,
                    "tables": [
                        {"table": c.table, "rows": c.rows, "checksum": c.live_checksum, "ok": c.ok}
                        for c in checks
                    ],
                }
            )
            differences += [{"name": name, "table": c.table, **d} for c in checks for d in c.differences]
        return {"ok": not differences, "checked": checked, "differences": differences}

    def _runner(self, name: str) -> ProjectionRunner:
        if name not in self.runners:
            raise UnknownProjection(name)
        return self.runners[name]

    def _save(self, name: str, **values: Any) -> None:
        values["updated_at"] = _now()
        with self.engine.begin() as conn:
            exists = conn.execute(select(rebuilds.c.projection).where(rebuilds.c.projection == name)).first()
            if exists:
                conn.execute(rebuilds.update().where(rebuilds.c.projection == name).values(**values))
            else:
                conn.execute(
                    upsert(conn, rebuilds).on_conflict_do_nothing().values(projection=name, **values)
                )
