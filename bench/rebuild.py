"""Rebuild replay rate: events/s that `cohortline rebuild analytics` replays from the PostgreSQL
event store into fresh read models and switches, beside a bare sequential read of the same events
table in the same run; and `cohortline audit export` of all the events and of the last tenth, whose
peak memory should be the same.

    eval "$(cohortline services env)"; .venv/bin/python bench/rebuild.py [--events 200000]

Uses the running PostgreSQL (`cohortline services up`) and a fresh database holding the UCI Online
Retail invoices as events (a session, a view per line, the order, its payment)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import online_retail_events  # noqa: E402
from domain.envelope import parse_envelope  # noqa: E402
from infra.bootstrap import build_system  # noqa: E402
from infra.config import load_settings  # noqa: E402
from tests.services import create_database, drop_database, migrate  # noqa: E402

GOAL = 20_000


def bare_read(url: str) -> tuple[int, float]:
    """Every stored event, in log order, through a server-side cursor; returns (rows, seconds)."""
    with psycopg2.connect(url) as conn, conn.cursor(name="scan") as cursor:
        cursor.itersize = 10_000
        started, rows = time.perf_counter(), 0
        cursor.execute(
            "SELECT id, originator_id, originator_version, topic, state FROM cohortline_events ORDER BY id"
        )
        for _ in cursor:
            rows += 1
        return rows, time.perf_counter() - started


def export(url: str, after: int) -> tuple[float, float]:
    """`cohortline audit export --after N` to /dev/null in a child process; (seconds, peak RSS MB),
    the peak as GNU time reports it for that process alone."""
    env = {**os.environ, "COHORTLINE_DATABASE_URL": url}
    command = [sys.executable, "-m", "infra.cli", "audit", "export", "--after", str(after)]
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        done = subprocess.run(
            ["/usr/bin/time", "-f", "peak_kb=%M", *command],
            env=env,
            stdout=sink,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"audit export failed: {done.stderr.decode()[-2000:]}")
    peak_kb = int(done.stderr.decode().rsplit("peak_kb=", 1)[1].split()[0])
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    if not os.environ.get("COHORTLINE_DATABASE_URL", "").startswith("postgresql"):
        raise SystemExit(
            'COHORTLINE_DATABASE_URL is not set: run `cohortline services up` and `eval "$(cohortline services env)"`'
        )
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    migrate(url)
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": url}))
    try:
        raw = list(islice(online_retail_events(), args.events))
        for start in range(0, len(raw), 1000):
            system.event_store.record([parse_envelope(e) for e in raw[start : start + 1000]])
        rows, seconds = bare_read(url)
        bare_rate = rows / seconds
        _, small_rss = export(url, rows - rows // 10)
        full_s, full_rss = export(url, 0)
        started = time.perf_counter()
        position = system.rebuilds.run("analytics")
        rate = position / (time.perf_counter() - started)
    finally:
        system.close()
        drop_database(url)
    print(f"{position:,} Online Retail events in PostgreSQL, {os.cpu_count()} cores")
    print(f"{'bare sequential read of the events table (baseline)':<54} {bare_rate:>10,.0f} events/s")
    print(
        f"{'rebuild: replay into new read models, then switch':<54} {rate:>10,.0f} events/s   "
        f"{rate / bare_rate:.2f} x baseline   (goal >= {GOAL:,}: {'met' if rate >= GOAL else 'NOT met'})"
    )
    print(
        f"{'audit export (NDJSON), all events':<54} {rows / full_s:>10,.0f} events/s   peak RSS {full_rss:,.0f} MB"
    )
    print(f"{'audit export (NDJSON), the last tenth':<54} {'':>10}            peak RSS {small_rss:,.0f} MB")


if __name__ == "__main__":
    main()
