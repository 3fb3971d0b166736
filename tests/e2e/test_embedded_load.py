"""The embedded default under concurrent appends and reads: SQLite, two API workers and the
projector on one file; no request may fail for lock contention."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from tests.metrics_text import value
from tests.processes import serve, wait_until

KEYS = "prod-key:producer,read-key:reader,scrape-key:metrics"
PRODUCER = {"Authorization": "Bearer prod-key"}
READER = {"Authorization": "Bearer read-key"}
DURATION_S = 20
APPENDERS = 4
READERS = 4
BATCH = 250
DAY = "2011-03-07"
REQUEST_TIMEOUT_S = 90
READS = (
    ("/v1/status", {}),
    ("/v1/retention/cohorts", {"granularity": "week", "from": "2011-01-03", "to": "2011-06-26"}),
    ("/v1/activity/active-users", {"granularity": "day", "from": DAY, "to": DAY}),
    ("/v1/users/search", {"country": "GB", "size": 50}),
)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    """5xx answers, and requests that got no answer."""
    appends: Counter[int] = field(default_factory=Counter)
    """Successful appends per appender."""
    appended: int = 0
    users: int = 0

    def send(self, method: str, url: str, **options: object) -> requests.Response | None:
        try:
            response = requests.request(method, url, timeout=REQUEST_TIMEOUT_S, **options)
        except requests.RequestException as e:
            with self.lock:
                self.failures.append(f"{method} {url}: {e!r}")
            return None
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.failures.append(f"{method} {response.request.path_url}: {response.text[:500]}")
        return response


def batch(appender: int, number: int) -> list[dict]:
    """250 events of 125 users seen for the first time: a session and an order each."""
    events = []
    for n in range(BATCH // 2):
        user = f"load-{appender}-{number}-{n}"
        events.append(_event("SessionStarted", user, session_id=f"{user}-s", platform="ios"))
        events.append(_event("OrderPlaced", user, order_id=f"{user}-o", amount="12.50", currency="GBP"))
    return events


def _event(type_: str, user: str, **data: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "user_id": user,
        "occurred_at": f"{DAY}T10:00:00Z",
        "data": data,
        "context": {"country": "GB", "channel": "app"},
    }


def appender(base: str, index: int, deadline: float, tally: Tally) -> None:
    number = 0
    while time.monotonic() < deadline:
        response = tally.send(
            "POST", f"{base}/v1/events", json={"events": batch(index, number)}, headers=PRODUCER
        )
        if response is not None and response.status_code == 201:
            with tally.lock:
                tally.appends[index] += 1
                tally.appended += response.json()["appended"]
                tally.users += BATCH // 2
        number += 1


def reader(base: str, index: int, deadline: float, tally: Tally) -> None:
    n = index
    while time.monotonic() < deadline:
        path, params = READS[n % len(READS)]
        tally.send("GET", f"{base}{path}", params=params, headers=READER)
        n += 1


def run_clients(base: str) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + DURATION_S
    threads = [threading.Thread(target=appender, args=(base, i, deadline, tally)) for i in range(APPENDERS)]
    threads += [threading.Thread(target=reader, args=(base, i, deadline, tally)) for i in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def read_fresh(base: str, path: str, params: dict, position: int) -> Callable[[], dict | None]:
    def check() -> dict | None:
        response = requests.get(
            f"{base}{path}",
            params={**params, "min_position": position, "wait_ms": 5000},
            headers=READER,
            timeout=30,
        )
        return response.json() if response.status_code == 200 else None

    return check


def test_concurrent_appenders_and_readers_never_see_a_server_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = KEYS
    env["COHORTLINE_RATE_LIMIT"] = "off"  # load, not the limits, is under test
    server, base = serve(env, tmp_path, "--workers", "2")
    try:
        tally = run_clients(base)
        print(f"\nstatuses {dict(tally.statuses)}, appends per appender {dict(tally.appends)}")
        assert tally.failures == [], tally.failures[:5]
        assert set(tally.statuses) <= {200, 201}, tally.statuses
        assert all(tally.appends[i] >= 3 for i in range(APPENDERS)), tally.appends
        assert sum(n for status, n in tally.statuses.items() if status == 200) >= 4 * READERS

        head = requests.get(f"{base}/v1/status", headers=READER, timeout=30).json()["head"]
        assert head == tally.appended == tally.users * 2
        active = wait_until(
            read_fresh(base, READS[2][0], READS[2][1], head), 120, "the projections to catch up", server
        )
        assert active["series"] == [{"period": DAY, "users": tally.users}]
        cohorts = read_fresh(base, READS[1][0], READS[1][1], head)()
        assert cohorts is not None and sum(c["size"] for c in cohorts["cohorts"]) == tally.users
        assert_metrics_sum_every_process(base, tally)
    finally:
        server.stop()


def assert_metrics_sum_every_process(base: str, tally: Tally) -> None:
    """/metrics, answered by either API worker, counts what both workers served and what the
    projections process applied."""
    scraped = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-key"}, timeout=30)
    assert scraped.status_code == 200, scraped.text
    text = scraped.text
    assert value(text, "cohortline_http_requests_total", route="/v1/events", status="201") == sum(
        tally.appends.values()
    )
    assert value(text, "cohortline_events_appended_total", source="events") == tally.appended
    assert value(text, "cohortline_projection_events_applied_total", projection="analytics") == tally.appended
    assert value(text, "cohortline_projection_lag_events", projection="analytics") == 0
