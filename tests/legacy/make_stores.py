"""Makes the stores that tests/integration/test_migrations.py upgrades: a SQLite file and a
PostgreSQL dump written by the code of earlier commits, before migrations existed.

    .venv/bin/python tests/legacy/make_stores.py   # needs `cohortline services up` and git history

The history is the demo's, in two stages: the first events recorded and projected by the code
before the hash chain existed (so they have no hash), the next ones, with personal data, by the last
commit before migrations. The files are committed; this program documents how they were made."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import create_database, drop_database  # noqa: E402

BEFORE_HASH_CHAIN = "9db0968"
BEFORE_MIGRATIONS = "b29415d"
STAGES = ((BEFORE_HASH_CHAIN, 0, 400), (BEFORE_MIGRATIONS, 400, 800))

STAGE = """
import sys
from domain.envelope import parse_envelope
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.demo import demo_events
from streams.local import LocalFollower
from streams.log_reader import LogReader

url, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
system = build_system(load_settings({"COHORTLINE_DATABASE_URL": url}))
events = demo_events()[start:stop]
if "log_reader" in dir(system):  # the later commit: personal data too
    events += [
        {"type": "UserProfileUpdated", "user_id": e["user_id"], "occurred_at": e["occurred_at"],
         "data": {"attributes": {"nickname": "n-" + e["user_id"], "city": "Leeds"}}}
        for e in events[::50]
    ]
    reader = system.log_reader()
else:
    reader = LogReader(system.event_store)
system.event_store.record([parse_envelope(e) for e in events])
LocalFollower(reader, system.runners).catch_up()
system.close()
"""


def extract(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into / commit, filter="data")
    return into / commit


def fill(url: str, trees: dict[str, Path]) -> None:
    for commit, start, stop in STAGES:
        env = {**os.environ, "PYTHONPATH": str(trees[commit])}
        subprocess.run(
            [sys.executable, "-c", STAGE, url, str(start), str(stop)], cwd=trees[commit], env=env, check=True
        )


def make_sqlite(trees: dict[str, Path], work: Path) -> None:
    path = work / "store.db"
    fill(f"sqlite:///{path}", trees)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    shutil.copy(path, HERE / f"{BEFORE_MIGRATIONS}.sqlite")


def make_postgres(trees: dict[str, Path]) -> None:
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    try:
        fill(url, trees)
        dsn = url.replace("postgresql+psycopg2://", "postgresql://")
        dump = subprocess.run(
            [_pg_dump(), "--inserts", "--no-owner", "--no-privileges", "--no-comments", dsn],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        plain_sql = "".join(line for line in dump.splitlines(keepends=True) if not line.startswith("\\"))
        (HERE / f"{BEFORE_MIGRATIONS}.sql").write_text(plain_sql)  # without psql's meta-commands
    finally:
        drop_database(url)


def _pg_dump() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    return str(found[-1]) if found else "pg_dump"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trees = {commit: extract(commit, work) for commit, _, _ in STAGES}
        make_sqlite(trees, work)
        make_postgres(trees)
    print(f"wrote {HERE / BEFORE_MIGRATIONS}.sqlite and .sql")


if __name__ == "__main__":
    main()
