"""Ingest throughput: events/s through POST /v1/events (batches of 500 from 4 concurrent clients) on
a durable PostgreSQL (fsync on), beside a bare batched INSERT of the same rows into a plain table in
the same run, and the API process's peak RSS.

    .venv/bin/python bench/ingest.py [--events 200000]

Starts its own durable PostgreSQL under var/bench-services (port 55433) and stops it at the end.
The events are the UCI Online Retail invoices as sessions, product views, orders and payments."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import online_retail_events  # noqa: E402
from tests.processes import Command, free_port, wait_until  # noqa: E402

BATCH = 500
CLIENTS = 4
PG_PORT = 55433
SERVICES_DIR = ROOT / "var" / "bench-services"
GOAL_RATIO = 0.5
GOAL_RSS_MB = 250


def services_env() -> dict[str, str]:
    return dict(
        os.environ,
        COHORTLINE_SERVICES_DIR=str(SERVICES_DIR),
        COHORTLINE_POSTGRES_PORT=str(PG_PORT),
        COHORTLINE_POSTGRES_DURABLE="1",
    )


def cohortline(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "infra.cli", *args], env=services_env(), check=True, cwd=ROOT)


def create_database() -> str:
    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SHOW fsync")
        fsync = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        sync = cursor.fetchone()[0]
        if fsync != "on" or sync != "on":
            raise SystemExit(
                f"PostgreSQL on {PG_PORT} is not durable (fsync={fsync}, synchronous_commit={sync})"
            )
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def split_by_customer(events: list[dict[str, Any]]) -> list[list[str]]:
    """Each client gets whole customers, in order, as ready JSON bodies of BATCH events."""
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(CLIENTS)]
    for event in events:
        lanes[hash(event["user_id"]) % CLIENTS].append(event)
    return [
        [json.dumps({"events": lane[i : i + BATCH]}) for i in range(0, len(lane), BATCH)] for lane in lanes
    ]


def post_lane(args: tuple[str, list[str]]) -> int:
    base, bodies = args
    session = requests.Session()
    sent = 0
    for body in bodies:
        response = session.post(
            f"{base}/v1/events",
            data=body,
            timeout=120,
            headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
        sent += response.json()["appended"]
    return sent


def bare_lane(args: tuple[str, list[list[tuple]]]) -> int:
    dsn, batches = args
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cursor:
        for rows in batches:
            psycopg2.extras.execute_values(
                cursor,
                "INSERT INTO bare_events (event_id, type, user_id, occurred_at, body) VALUES %s",
                rows,
                page_size=BATCH,
            )
            conn.commit()
    conn.close()
    return sum(len(b) for b in batches)


def bare_insert(dsn: str, lanes: list[list[str]], clients: int) -> float:
    """Rows per second of a bare batched INSERT of the same rows, from `clients` processes."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bare_events")
        cursor.execute(
            "CREATE TABLE bare_events (id bigserial PRIMARY KEY, event_id uuid NOT NULL, type text NOT "
            "NULL, user_id text, occurred_at timestamptz NOT NULL, body jsonb NOT NULL)"
        )
    conn.commit()
    conn.close()
    work = []
    for lane in lanes:
        batches = []
        for body in lane:
            events = json.loads(body)["events"]
            batches.append(
                [(e["event_id"], e["type"], e["user_id"], e["occurred_at"], json.dumps(e)) for e in events]
            )
        work.append((dsn, batches))
    if clients == 1:
        work = [(dsn, [batch for _, batches in work for batch in batches])]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        inserted = sum(pool.map(bare_lane, work))
    return inserted / (time.perf_counter() - started)


def peak_rss_mb(pid: int) -> tuple[float, int]:
    """The summed peak RSS (VmHWM) of the server and all its processes, and how many there are."""
    pids = [pid]
    for candidate in Path("/proc").iterdir():
        if candidate.name.isdigit():
            try:
                fields = (candidate / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(candidate.name))
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024, len(pids)


def api_ingest(dsn_url: str, lanes: list[list[str]], workers: int) -> tuple[float, tuple[float, int], int]:
    env = dict(os.environ, COHORTLINE_DATABASE_URL=dsn_url, COHORTLINE_API_KEYS="bench:producer")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    server = Command(
        ["serve", "--port", str(port), "--workers", str(workers), "--no-projections"], env, workdir, "serve"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/v1/openapi.json", timeout=2).ok, 60, "the API", server)
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
            appended = sum(pool.map(post_lane, [(base, lane) for lane in lanes]))
        elapsed = time.perf_counter() - started
        return appended / elapsed, peak_rss_mb(server.process.pid), appended
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="API worker processes")
    args = parser.parse_args()

    events = []
    for event in online_retail_events():
        events.append(event)
        if len(events) >= args.events:
            break
    lanes = split_by_customer(events)
    print(
        f"{len(events):,} Online Retail events, batches of {BATCH}, {CLIENTS} concurrent clients, "
        f"{args.workers} API workers, {os.cpu_count()} cores"
    )

    cohortline("services", "up", "postgresql")
    try:
        dsn = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname={create_database()}"
        bare_single = bare_insert(dsn, lanes, 1)
        bare_rate = bare_insert(dsn, lanes, CLIENTS)
        url = f"postgresql://postgres@127.0.0.1:{PG_PORT}/{create_database()}"
        subprocess.run(
            [sys.executable, "-m", "infra.cli", "migrate"],
            env=dict(os.environ, COHORTLINE_DATABASE_URL=url),
            check=True,
            cwd=ROOT,
        )
        api_rate, (rss, processes), appended = api_ingest(url, lanes, args.workers)
    finally:
        cohortline("services", "down", "postgresql")
    if appended != len(events):
        raise SystemExit(f"appended {appended} of {len(events)} events")
    ratio = api_rate / bare_rate
    print("PostgreSQL 15, durable (fsync=on, synchronous_commit=on)")
    print(f"{'bare batched INSERT, 1 connection':<40} {bare_single:>10,.0f} events/s")
    print(f"{f'bare batched INSERT, {CLIENTS} processes (baseline)':<40} {bare_rate:>10,.0f} events/s")
    print(
        f"{'POST /v1/events (Cohortline)':<40} {api_rate:>10,.0f} events/s   {ratio:.2f} x baseline, "
        f"{api_rate / bare_single:.2f} x 1 connection"
        f"   (goal >= {GOAL_RATIO:.2f}: {'met' if ratio >= GOAL_RATIO else 'NOT met'})"
    )
    print(
        f"{f'API peak RSS, {processes} processes':<40} {rss:>10,.0f} MB         "
        f"(goal < {GOAL_RSS_MB}: {'met' if rss < GOAL_RSS_MB else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
