"""Cohort query latency: GET /v1/retention/cohorts p50 / p95 over 100,000 users and 5,000,000 events,
beside the same answer computed by SQL over the raw events in the same PostgreSQL database.

    eval "$(cohortline services env)"; .venv/bin/python bench/cohort_query.py [--users 100000 --events-per-user 50]

Builds the read models with the projection code itself (in batches, without Kafka) from a
synthetic year of sessions, scene visits and orders, and copies the same events into a plain table
for the baseline query."""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import latencies, p95, reader_api  # noqa: E402
from infra import migrations  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from projections.analytics import AnalyticsProjection  # noqa: E402
from projections.records import EventRecord  # noqa: E402
from projections.runner import Delivery, ProjectionRunner  # noqa: E402
from projections.tracking import LOCAL_PARTITION  # noqa: E402
from tests.services import create_database, drop_database  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
GOAL_P95_MS = 50
QUERY = {
    "granularity": "month",
    "cohort": "first_seen",
    "return": "active",
    "mode": "on",
    "from": "2024-01-01",
    "to": "2024-12-31",
}
BASELINE_SQL = """
WITH firsts AS (
    SELECT user_id, date_trunc('month', min(occurred_at)) AS cohort FROM raw_events GROUP BY user_id
), returns AS (
    SELECT DISTINCT user_id, date_trunc('month', occurred_at) AS period FROM raw_events
)
SELECT f.cohort, r.period, count(*) FROM firsts f JOIN returns r USING (user_id)
WHERE r.period >= f.cohort GROUP BY f.cohort, r.period
"""


Habit = Callable[[str, int], tuple[str, dict[str, Any]]]
"""(user, k) → the type and data of the user's k-th event."""


def sessions_scenes_orders(rng: random.Random) -> Habit:
    """Half sessions, 40 % scene visits, 10 % orders."""

    def pick(user: str, k: int) -> tuple[str, dict[str, Any]]:
        kind = rng.random()
        if kind < 0.5:
            return "SessionStarted", {}
        if kind < 0.9:
            return "SceneVisited", {"scene": rng.choice(("shopping", "social", "content"))}
        return "OrderPlaced", {"order_id": f"{user}-{k}", "amount": "10", "currency": "EUR"}

    return pick


def synthetic_events(
    users: int,
    per_user: int,
    seed: int = 11,
    habits: Callable[[random.Random], Habit] = sessions_scenes_orders,
):
    """Each user arrives some day of the year, then comes back with a decaying probability; what
    each event is comes from the user's `habits`, drawn once per user."""
    rng = random.Random(seed)
    position = 0
    for n in range(users):
        user = f"u{n:06d}"
        at = START + timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
        context = {
            "country": rng.choice(("GB", "DE", "FR", "CN", "US")),
            "channel": rng.choice(("app", "web")),
        }
        pick = habits(rng)
        for k in range(per_user):
            position += 1
            type_, data = pick(user, k)
            yield EventRecord(position, type_, 1, f"e{position}", user, k + 1, user, at, at, context, data)
            at += timedelta(days=rng.expovariate(1 / 7), minutes=rng.randrange(600))


def build(url: str, users: int, per_user: int) -> int:
    engine = create_database_engine(url)
    migrations.upgrade(engine)
    runner = ProjectionRunner(engine, AnalyticsProjection())
    raw = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    with raw.cursor() as cursor:
        cursor.execute("CREATE TABLE raw_events (user_id text, type text, occurred_at timestamptz)")
    raw.commit()
    batch, count, started = [], 0, time.perf_counter()
    for event in synthetic_events(users, per_user):
        batch.append(event)
        if len(batch) == 5000:
            count += _load(runner, raw, batch)
            batch = []
            if count % 500_000 == 0:
                print(f"  {count:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    count += _load(runner, raw, batch)
    with raw.cursor() as cursor:
        cursor.execute("CREATE INDEX ON raw_events (user_id, occurred_at)")
        cursor.execute("ANALYZE")
    raw.commit()
    raw.close()
    engine.dispose()
    return count


def _load(runner: ProjectionRunner, raw, batch: list[EventRecord]) -> int:
    runner.process([Delivery(LOCAL_PARTITION, e.position, None, e) for e in batch])
    buffer = io.StringIO("".join(f"{e.user_id}\t{e.type}\t{e.occurred_at.isoformat()}\n" for e in batch))
    with raw.cursor() as cursor:
        cursor.copy_expert("COPY raw_events FROM STDIN", buffer)
    raw.commit()
    return len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events-per-user", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("COHORTLINE_DATABASE_URL"):
        raise SystemExit(
            'COHORTLINE_DATABASE_URL is not set: run `cohortline services up` and `eval "$(cohortline services env)"`'
        )
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"]).replace(
        "postgresql://", "postgresql+psycopg2://"
    )
    try:
        started = time.perf_counter()
        count = build(url, args.users, args.events_per_user)
        print(
            f"built read models and raw table: {count:,} events, {args.users:,} users in {time.perf_counter() - started:.0f} s"
        )
        with reader_api(url, "bench-cohorts") as (base, session):

            def api() -> None:
                response = session.get(f"{base}/v1/retention/cohorts", params=QUERY, timeout=30)
                assert response.status_code == 200 and response.json()["cohorts"], response.text

            api()
            api_ms = latencies(api, args.runs)
        raw = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))

        def baseline() -> None:
            with raw.cursor() as cursor:
                cursor.execute(BASELINE_SQL)
                cursor.fetchall()

        sql_ms = latencies(baseline, max(3, args.runs // 40))
        raw.close()
    finally:
        drop_database(url.replace("postgresql+psycopg2://", "postgresql://"))
    api_p95 = p95(api_ms)
    print(f"{args.users:,} users, {count:,} events; monthly first-seen cohorts over a year")
    print(
        f"{'SQL over the raw events (baseline)':<40} p50 {statistics.median(sql_ms):>8.1f} ms   "
        f"p95 {p95(sql_ms):>8.1f} ms   ({len(sql_ms)} runs)"
    )
    print(
        f"{'GET /v1/retention/cohorts':<40} p50 {statistics.median(api_ms):>8.1f} ms   p95 {api_p95:>8.1f} ms   "
        f"({len(api_ms)} runs; goal p95 < {GOAL_P95_MS} ms: {'met' if api_p95 < GOAL_P95_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
