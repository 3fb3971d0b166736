"""Freshness: how long after POST /v1/events answers 201 its events are visible to queries (the read
models' as_of reaches the batch's last_position), at a steady 2,000 events/s through the whole
stack: API → PostgreSQL event store → relay → Kafka → Faust worker → PostgreSQL + Elasticsearch.
Baseline in the same run: the time the append itself takes (the API's 201 round trip).

    eval "$(cohortline services env)"; .venv/bin/python bench/freshness.py [--seconds 30 --rate 2000]"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import online_retail_events  # noqa: E402
from bench.services import require_env  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from projections.tracking import progress  # noqa: E402
from tests.processes import (  # noqa: E402
    Command,
    serve,
    wait_until,
)
from tests.services import create_database, delete_index, drop_database, migrate  # noqa: E402

PARTITIONS = 4
TICK_S = 0.1
GOAL_P99_S = 2.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    args = parser.parse_args()
    require_env()
    per_tick = int(args.rate * TICK_S)
    events = []
    for event in online_retail_events():
        events.append(event)
        if len(events) >= per_tick * int(args.seconds / TICK_S):
            break
    batches = [events[i : i + per_tick] for i in range(0, len(events), per_tick)]

    url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    migrate(url)
    env = dict(
        os.environ,
        COHORTLINE_DATABASE_URL=url,
        COHORTLINE_API_KEYS="bench:producer+reader",
        COHORTLINE_KAFKA_TOPIC=f"bench.freshness.{uuid.uuid4().hex[:8]}",
        COHORTLINE_ELASTICSEARCH_INDEX=f"bench-fresh-{uuid.uuid4().hex[:8]}",
        COHORTLINE_KAFKA_PARTITIONS=str(PARTITIONS),
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    server, base = serve(env, workdir)
    relay = Command(["relay"], env, workdir, "relay")
    worker = Command(["worker"], env, workdir, "worker")
    engine = create_database_engine(url)
    session = requests.Session()
    session.headers["Authorization"] = "Bearer bench"
    acked: list[tuple[float, int]] = []
    append_s: list[float] = []
    try:
        warm = session.post(
            f"{base}/v1/events",
            json={
                "events": [
                    {"type": "SessionStarted", "user_id": "warm-up", "occurred_at": "2010-11-30T00:00:00Z"}
                ]
            },
            timeout=30,
        )
        position = warm.json()["last_position"]

        def visible() -> int:
            with engine.connect() as conn:
                return progress(conn, "analytics", PARTITIONS).position

        wait_until(lambda: visible() >= position, 180, "the stack to warm up", server, relay, worker)
        seen: dict[int, float] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                now_visible = visible()
                now = time.perf_counter()
                for _, last in acked:
                    if last not in seen and last <= now_visible:
                        seen[last] = now
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        began = next_tick = time.perf_counter()
        for batch in batches:
            started = time.perf_counter()
            response = session.post(f"{base}/v1/events", json={"events": batch}, timeout=30)
            response.raise_for_status()
            done = time.perf_counter()
            append_s.append(done - started)
            acked.append((done, response.json()["last_position"]))
            next_tick += TICK_S
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        offered = len(events) / (time.perf_counter() - began)
        wait_until(
            lambda: all(last in seen for _, last in acked), 300, "every batch to be visible", relay, worker
        )
        stop.set()
        watcher.join(5)
        lags = [seen[last] - at for at, last in acked]
    finally:
        for command in (worker, relay, server):
            command.stop()
        engine.dispose()
        drop_database(url)
        delete_index(os.environ["COHORTLINE_ELASTICSEARCH_URL"], env["COHORTLINE_ELASTICSEARCH_INDEX"])
    print(
        f"{len(events):,} Online Retail events in {len(batches)} batches of {per_tick}, offered {offered:,.0f} events/s, "
        f"{os.cpu_count()} cores, full stack on one machine"
    )
    print(
        f"{'append (POST /v1/events round trip)':<40} p50 {statistics.median(append_s):6.3f} s   "
        f"p99 {percentile(append_s, 0.99):6.3f} s"
    )
    p99 = percentile(lags, 0.99)
    print(
        f"{'append -> visible in queries':<40} p50 {statistics.median(lags):6.3f} s   p99 {p99:6.3f} s   "
        f"(goal p99 < {GOAL_P99_S} s: {'met' if p99 < GOAL_P99_S else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
