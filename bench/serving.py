"""What the query benchmarks share: a `cohortline serve` over a benchmark database, read with a
reader key, and latencies in milliseconds."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.processes import Command, free_port, wait_until


@contextmanager
def reader_api(url: str, name: str) -> Iterator[tuple[str, requests.Session]]:
    """A server over the read models at `url` (no projections, Kafka or Elasticsearch): its base URL
    and a session holding a reader key."""
    env = dict(os.environ, COHORTLINE_DATABASE_URL=url, COHORTLINE_API_KEYS="bench:reader")
    env.pop("COHORTLINE_KAFKA_URL", None)
    env.pop("COHORTLINE_ELASTICSEARCH_URL", None)
    port = free_port()
    server = Command(
        ["serve", "--port", str(port), "--no-projections"],
        env,
        Path(tempfile.mkdtemp(prefix=f"{name}-")),
        "serve",
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers["Authorization"] = "Bearer bench"
    try:
        wait_until(lambda: session.get(f"{base}/v1/status", timeout=5).ok, 60, "the API", server)
        yield base, session
    finally:
        server.stop()


def latencies(call: Callable[[], Any], runs: int) -> list[float]:
    """`call`'s durations over `runs` runs, in milliseconds, ascending."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def p95(ascending: list[float]) -> float:
    return ascending[int(len(ascending) * 0.95) - 1]
