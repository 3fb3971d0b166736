"""Feature cohorts' cost: what scenes and tools add to the analytics projection (events/s, read-model
size) and to the cohort query's latency over 100,000 users and 5,000,000 events, beside the same
year without features built and queried in the same run.

    eval "$(cohortline services env)"; .venv/bin/python bench/features.py [--users 100000 --events-per-user 50 --features-per-user 5 --runs 200 --seed 11]

Generates a synthetic year as bench/cohort_query.py does (each user arrives some day of it and comes
back with a decaying probability), where each user uses `--features-per-user` distinct features out
of 3 scenes and 5 tools: sessions, visits to their scenes, uses of their tools and orders in EUR.
Builds the read models twice with the projection code itself (in batches of 5,000, without Kafka),
each in a fresh database: (a) without features, every SceneVisited and ToolUsed replaced by a
SessionStarted of the same user at the same time (the same activity), and (b) the history as
generated. Times only the projection's batches; measures the read models after VACUUM ANALYZE
(their bytes with indexes and TOAST, and the rows of the cohort, period and feature tables); then
asks the cohort queries `--runs` times each through a running `serve` (the feature report and
impact `--runs` / 10 times), every answer checked to be a 200 and not empty."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cohort_query  # noqa: E402
from bench.cohort_query import GOAL_P95_MS, QUERY, Habit  # noqa: E402
from bench.serving import latencies, p95, reader_api  # noqa: E402
from bench.sizes import COUNTED, read_model_size  # noqa: E402
from infra import migrations  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from projections.analytics import AnalyticsProjection  # noqa: E402
from projections.records import EventRecord  # noqa: E402
from projections.runner import Delivery, ProjectionRunner  # noqa: E402
from projections.tracking import LOCAL_PARTITION  # noqa: E402
from tests.services import create_database, drop_database  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR = {"from": "2024-01-01", "to": "2024-12-31"}
BATCH = 5000
SCENES = ("shopping", "social", "content")
TOOLS = ("check_in", "wishlist", "price_alert", "coupon_center", "live_stream")
FEATURES = tuple(("SceneVisited", "scene", s) for s in SCENES) + tuple(("ToolUsed", "tool", t) for t in TOOLS)
"""Each feature as (event type, data field, name)."""
FEATURE_TYPES = ("SceneVisited", "ToolUsed")
TOOL = "tool:check_in"


@dataclass(frozen=True)
class Query:
    label: str
    path: str
    params: dict[str, str]
    filled: Callable[[dict[str, Any]], bool]
    """whether the answer holds something"""
    cohorts: bool = True
    """a cohort query, held to the goal, asked --runs times (else --runs / 10)"""


def _cohorts(answer: dict[str, Any]) -> bool:
    return bool(answer["cohorts"])


BASELINE_QUERIES = (Query("first_seen / active, month", "/v1/retention/cohorts", QUERY, _cohorts),)
FEATURE_QUERIES = (
    *BASELINE_QUERIES,
    Query(
        f"{TOOL} / {TOOL}, month",
        "/v1/retention/cohorts",
        {**QUERY, "cohort": TOOL, "return": TOOL},
        _cohorts,
    ),
    Query(f"{TOOL} / active, month", "/v1/retention/cohorts", {**QUERY, "cohort": TOOL}, _cohorts),
    Query(
        "first_seen / scene:social, month",
        "/v1/retention/cohorts",
        {**QUERY, "return": "scene:social"},
        _cohorts,
    ),
    Query(
        f"{TOOL} / {TOOL}, week",
        "/v1/retention/cohorts",
        {**QUERY, "granularity": "week", "cohort": TOOL, "return": TOOL},
        _cohorts,
    ),
    Query("GET /v1/features", "/v1/features", YEAR, lambda answer: bool(answer["features"]), cohorts=False),
    Query(
        f"GET /v1/features/{TOOL}/impact",
        f"/v1/features/{TOOL}/impact",
        YEAR,
        lambda answer: any(group["users"] for group in answer["groups"].values()),
        cohorts=False,
    ),
)


def synthetic_events(users: int, per_user: int, features_per_user: int, seed: int) -> Iterator[EventRecord]:
    """The cohort benchmark's year, where each user has `features_per_user` features of their own:
    half sessions, 40 % uses of one of them, 10 % orders."""

    def own_features(rng: random.Random) -> Habit:
        mine = rng.sample(FEATURES, features_per_user)

        def pick(user: str, k: int) -> tuple[str, dict[str, Any]]:
            kind = rng.random()
            if kind < 0.5:
                return "SessionStarted", {}
            if kind < 0.9:
                type_, name, value = rng.choice(mine)
                return type_, {name: value}
            amount = Decimal(rng.randrange(500, 20_000)) / 100
            return "OrderPlaced", {"order_id": f"{user}-{k}", "amount": amount, "currency": "EUR"}

        return pick

    return cohort_query.synthetic_events(users, per_user, seed, own_features)


def without_features(events: Iterator[EventRecord]) -> Iterator[EventRecord]:
    """The same history, each scene visit or tool use a session of the same user at the same time."""
    for e in events:
        yield replace(e, type="SessionStarted", data={}) if e.type in FEATURE_TYPES else e


@dataclass
class Build:
    label: str
    events: int = 0
    seconds: float = 0.0
    """in the projection's batches only"""
    total_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def build(url: str, events: Iterator[EventRecord], found: Build) -> None:
    """Project `events` in batches into the fresh database at `url`, timing the batches; then its
    read models' size."""
    engine = create_database_engine(url)
    migrations.upgrade(engine)
    runner = ProjectionRunner(engine, AnalyticsProjection())
    started = time.perf_counter()

    def load(batch: list[EventRecord]) -> None:
        deliveries = [Delivery(LOCAL_PARTITION, e.position, None, e) for e in batch]
        began = time.perf_counter()
        runner.process(deliveries)
        found.seconds += time.perf_counter() - began
        found.events += len(batch)
        if found.events % 500_000 == 0:
            print(
                f"  {found.label}: {found.events:,} events, {found.seconds:.0f} s projecting, "
                f"{time.perf_counter() - started:.0f} s in all",
                flush=True,
            )

    batch: list[EventRecord] = []
    for event in events:
        batch.append(event)
        if len(batch) == BATCH:
            load(batch)
            batch = []
    if batch:
        load(batch)
    engine.dispose()
    found.total_bytes, found.rows = read_model_size(url)


def ask(url: str, queries: tuple[Query, ...], runs: int, found: Build) -> None:
    """Each query through a running `serve`: `runs` times for a cohort query, `runs` / 10 else."""
    with reader_api(url, "bench-features") as (base, session):
        for query in queries:

            def get(query: Query = query) -> None:
                response = session.get(f"{base}{query.path}", params=query.params, timeout=120)
                assert response.status_code == 200, (
                    f"{query.label}: {response.status_code} {response.text[:500]}"
                )
                assert query.filled(response.json()), f"{query.label}: empty: {response.text[:500]}"

            get()
            found.ms[query.label] = latencies(get, runs if query.cohorts else max(3, runs // 10))


def measure(label: str, events: Iterator[EventRecord], queries: tuple[Query, ...], runs: int) -> Build:
    """Build and query in a fresh database, dropped afterwards."""
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"]).replace(
        "postgresql://", "postgresql+psycopg2://"
    )
    found = Build(label)
    try:
        build(url, events, found)
        print(
            f"built {label}: {found.events:,} events in {found.seconds:.0f} s of projection "
            f"({found.rate:,.0f} events/s)",
            flush=True,
        )
        ask(url, queries, runs, found)
    finally:
        drop_database(url.replace("postgresql+psycopg2://", "postgresql://"))
    return found


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}" if a else "-"


def report(args: argparse.Namespace, a: Build, b: Build) -> None:
    print(
        f"{args.users:,} users, {b.events:,} events over 2024; (b): {args.features_per_user} of "
        f"{len(FEATURES)} features each ({len(SCENES)} scenes, {len(TOOLS)} tools); "
        f"(a): their uses as sessions"
    )
    rows: list[tuple[str, float, float, Callable[[float], str]]] = [
        ("projection: events", a.events, b.events, lambda v: f"{v:,.0f}"),
        ("projection: seconds", a.seconds, b.seconds, lambda v: f"{v:,.1f}"),
        ("projection: events/s", a.rate, b.rate, lambda v: f"{v:,.0f}"),
        ("read models: total MB", a.total_bytes / 1e6, b.total_bytes / 1e6, lambda v: f"{v:,.1f}"),
        *((f"rows: {t}", a.rows[t], b.rows[t], lambda v: f"{v:,.0f}") for t in COUNTED),
    ]
    print(f"{'':<32}{'(a) without features':>22}{'(b) with features':>22}{'(b)/(a)':>10}")
    for label, x, y, shown in rows:
        print(f"{label:<32}{shown(x):>22}{shown(y):>22}{_ratio(x, y):>10}")
    print(
        f"latency through serve, ms; cohort queries {args.runs} runs each, the feature routes "
        f"{max(3, args.runs // 10)}; goal for a cohort query p95 < {GOAL_P95_MS} ms"
    )
    print(f"{'':<40}{'(a) p50':>9}{'p95':>9}{'(b) p50':>11}{'p95':>9}  goal")
    for query in FEATURE_QUERIES:
        cells, goals = [], []
        for build_, width in ((a, 9), (b, 11)):
            ms = build_.ms.get(query.label)
            if ms is None:
                cells.append(f"{'-':>{width}}{'-':>9}")
                continue
            cells.append(f"{statistics.median(ms):>{width}.1f}{p95(ms):>9.1f}")
            if query.cohorts:
                goals.append(f"{build_.label[:3]} {'met' if p95(ms) < GOAL_P95_MS else 'NOT met'}")
        print(f"{query.label:<40}{''.join(cells)}  {', '.join(goals) if goals else '(reported)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events-per-user", type=int, default=50)
    parser.add_argument("--features-per-user", type=int, default=5, choices=range(1, len(FEATURES) + 1))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not os.environ.get("COHORTLINE_DATABASE_URL"):
        raise SystemExit(
            'COHORTLINE_DATABASE_URL is not set: run `cohortline services up` and `eval "$(cohortline services env)"`'
        )

    def history() -> Iterator[EventRecord]:
        return synthetic_events(args.users, args.events_per_user, args.features_per_user, args.seed)

    a = measure("(a) without features", without_features(history()), BASELINE_QUERIES, args.runs)
    b = measure("(b) with features", history(), FEATURE_QUERIES, args.runs)
    report(args, a, b)


if __name__ == "__main__":
    main()
