"""A steady load on a running Cohortline API, for the tests that break a service under it.

Producer threads append the demo history (infra.demo) in small batches at a modest rate, each event
with an `event_id` fixed by its place in the history, and retry an append that got no answer or a
5xx with the same batch until it is acknowledged: a retry is a duplicate, never a second event.
Reader threads ask a few analytics routes and the user search. Every answer that is not a 2xx is
kept for the report; the only acceptable one is 503 `unavailable` with `Retry-After`."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests

from infra.demo import demo_events
from tests.processes import Command, wait_until

PRODUCERS = 3
READERS = 2
BATCH = 20
EVENTS_PER_S = 60
READ_EVERY_S = 0.3
REQUEST_TIMEOUT_S = 60
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 1.5)
MAX_RETRY_WAIT_S = 1.5
"""A 503's Retry-After is honoured up to this (the test's patience, not the client's politeness).
Both stay below gunicorn's 2 s keep-alive: a pooled connection idle longer may be closed by the
server just as the retry is sent on it, a race of every HTTP client that is not the server's fault."""
GIVE_UP_AFTER_S = 180
"""A batch still unacknowledged after this is reported, and its producer stops."""
EVENT_IDS = uuid.UUID("6f0d3c1e-2a4b-4c5d-9e8f-0a1b2c3d4e5f")
HISTORY_START, HISTORY_END = date(2025, 3, 1), date(2025, 5, 4)
"""The span of the demo history, for the reference's periods."""
READS = (
    ("/v1/retention/cohorts", {"granularity": "week", "from": "2025-03-03", "to": "2025-04-27"}),
    ("/v1/users/search", {"country": "DE", "size": 20}),
    ("/v1/activity/active-users", {"granularity": "day", "from": "2025-03-03", "to": "2025-04-30"}),
    ("/v1/value/revenue", {"granularity": "week", "from": "2025-03-03", "to": "2025-04-27"}),
    ("/v1/users/search", {"lifecycle": "active", "size": 20}),
)


def load_events(seed: int = 7) -> list[dict[str, Any]]:
    """The demo history in event-time order, each event with a fixed `event_id`."""
    return [
        {**event, "event_id": str(uuid.uuid5(EVENT_IDS, f"{seed}/{n}"))}
        for n, event in enumerate(demo_events(seed))
    ]


def split(events: list[dict[str, Any]], producers: int) -> tuple[list[dict[str, Any]], list[list[dict]]]:
    """(opening, streams): the campaigns' creations, appended before the load starts since enrolments
    into them come from every producer; then one stream per producer, each user's events in order in
    one stream (their orders, tickets and coupons depend on each other), and the events without a user
    in the first."""
    opening = [e for e in events if e["type"] == "CampaignCreated"]
    streams: list[list[dict[str, Any]]] = [[] for _ in range(producers)]
    for event in events:
        if event["type"] == "CampaignCreated":
            continue
        user = event.get("user_id")
        streams[zlib.crc32(user.encode()) % producers if user else 0].append(event)
    return opening, streams


@dataclass(frozen=True)
class Answer:
    """A request that did not get a 2xx."""

    client: str
    request: str
    status: int | None
    """None: no answer (connection error or timeout)."""
    code: str
    """The error body's code, the exception's name, or the start of a body that is not ours."""
    retry_after: str | None
    at_s: float
    """Seconds since the load started."""

    @property
    def unavailable(self) -> bool:
        """The answer a client must get while a backend is down (api.md "Errors")."""
        return self.status == 503 and self.code == "unavailable" and self.retry_after is not None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[str] = field(default_factory=list)
    """The event ids of every acknowledged batch."""
    appended: int = 0
    duplicates: int = 0
    statuses: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    answers: list[Answer] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)


class SteadyLoad:
    """`with SteadyLoad(base, "prod-key", "read-key") as load:` runs the load until `stop()` (or the
    end of the block, or of the history). Stopping lets every producer finish the batch in hand, so
    that `acknowledged` is exactly what the log must hold."""

    def __init__(
        self,
        base: str,
        producer_key: str,
        reader_key: str,
        *,
        producers: int = PRODUCERS,
        readers: int = READERS,
        events_per_s: float = EVENTS_PER_S,
        events: list[dict[str, Any]] | None = None,
    ):
        self.base = base
        self.producer_headers = {"Authorization": f"Bearer {producer_key}"}
        self.reader_headers = {"Authorization": f"Bearer {reader_key}"}
        self.opening, self.streams = split(events if events is not None else load_events(), producers)
        self.readers = readers
        self.batch_interval_s = BATCH * producers / events_per_s
        self.tally = Tally()
        self.began = 0.0
        self._stopping = threading.Event()
        self._abandoning = threading.Event()
        self._producers: list[threading.Thread] = []
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        self.stop(abandon=error_type is not None)

    def start(self) -> None:
        self.began = time.monotonic()
        with requests.Session() as session:
            assert self._append(session, "opening", self.opening), self.report()
        self._producers = [
            threading.Thread(target=self._produce, args=(n, stream), name=f"producer-{n}", daemon=True)
            for n, stream in enumerate(self.streams)
        ]
        self._readers = [
            threading.Thread(target=self._read, args=(n,), name=f"reader-{n}", daemon=True)
            for n in range(self.readers)
        ]
        for thread in (*self._producers, *self._readers):
            thread.start()

    def stop(self, *, abandon: bool = False) -> None:
        """`abandon`: also stop retrying the batches in hand (the test failed already)."""
        if abandon:
            self._abandoning.set()
        self._stopping.set()
        for thread in (*self._producers, *self._readers):
            thread.join(GIVE_UP_AFTER_S + 2 * REQUEST_TIMEOUT_S)
            assert not thread.is_alive(), f"{thread.name} never finished\n{self.report()}"

    @property
    def sent(self) -> int:
        """How many events were acknowledged."""
        with self.tally.lock:
            return len(self.tally.acknowledged)

    @property
    def acknowledged(self) -> list[str]:
        with self.tally.lock:
            return list(self.tally.acknowledged)

    def failures(self) -> list[str]:
        """Every answer that is neither a 2xx nor a proper 503 `unavailable`, and every batch given up."""
        with self.tally.lock:
            wrong = [a for a in self.tally.answers if not a.unavailable]
            return [
                f"{a.client}: {a.request} → {a.status or 'no answer'} {a.code} at {a.at_s} s" for a in wrong
            ] + [f"gave up: {g}" for g in self.tally.gave_up]

    def wait_for_more(self, events: int, timeout: float, what: str, *watched: Command) -> None:
        """Wait until `events` more events than now were acknowledged (the load goes on)."""
        target = self.sent + events
        wait_until(lambda: self.sent >= target or self._exhausted(), timeout, what, *watched)
        assert self.sent >= target, f"the history ran out before {what}\n{self.report()}"

    def _exhausted(self) -> bool:
        return bool(self._producers) and not any(t.is_alive() for t in self._producers)

    def _produce(self, number: int, stream: list[dict[str, Any]]) -> None:
        client = f"producer {number}"
        next_at = time.monotonic()
        with requests.Session() as session:
            for start in range(0, len(stream), BATCH):
                if self._stopping.is_set() or not self._append(
                    session, client, stream[start : start + BATCH]
                ):
                    return
                next_at += self.batch_interval_s
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stopping.wait(delay)
                else:
                    next_at = time.monotonic()  # after an outage, the same pace rather than a burst

    def _append(self, session: requests.Session, client: str, batch: list[dict[str, Any]]) -> bool:
        """Append `batch` until it is acknowledged, even once stopping (it may already be in the log);
        False when given up."""
        first_try = time.monotonic()
        for attempt in itertools.count():
            response = self._send(session, client, "POST", "/v1/events", json={"events": batch})
            if response is not None and response.status_code in (200, 201):
                body = response.json()
                with self.tally.lock:
                    self.tally.acknowledged += [e["event_id"] for e in batch]
                    self.tally.appended += body["appended"]
                    self.tally.duplicates += body["duplicates"]
                return True
            retryable = response is None or response.status_code >= 500
            given_up = time.monotonic() - first_try > GIVE_UP_AFTER_S or self._abandoning.is_set()
            if not retryable or given_up:
                status = "no answer" if response is None else response.status_code
                with self.tally.lock:
                    self.tally.gave_up.append(f"{client}: batch of {batch[0]['event_id']} ({status})")
                return False
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                delay = min(float(response.headers["Retry-After"]), MAX_RETRY_WAIT_S)
            self._abandoning.wait(delay)
        raise AssertionError("unreachable")

    def _read(self, number: int) -> None:
        client = f"reader {number}"
        with requests.Session() as session:
            n = number
            while not self._stopping.is_set():
                path, params = READS[n % len(READS)]
                self._send(session, client, "GET", path, params=params)
                n += 1
                self._stopping.wait(READ_EVERY_S)

    def _send(
        self, session: requests.Session, client: str, method: str, path: str, **options: Any
    ) -> requests.Response | None:
        headers = self.producer_headers if method == "POST" else self.reader_headers
        request = f"{method} {path}"
        try:
            response = session.request(
                method, f"{self.base}{path}", headers=headers, timeout=REQUEST_TIMEOUT_S, **options
            )
        except requests.RequestException as e:
            self._keep(Answer(client, request, None, type(e).__name__, None, self._since()))
            return None
        with self.tally.lock:
            self.tally.statuses[(request, response.status_code)] += 1
        if not 200 <= response.status_code < 300:
            self._keep(
                Answer(
                    client,
                    request,
                    response.status_code,
                    _error_code(response),
                    response.headers.get("Retry-After"),
                    self._since(),
                )
            )
        return response

    def _keep(self, answer: Answer) -> None:
        with self.tally.lock:
            self.tally.answers.append(answer)
            if answer.status is None:
                self.tally.statuses[(answer.request, None)] += 1

    def _since(self) -> float:
        return round(time.monotonic() - self.began, 1)

    def report(self) -> str:
        """What the load sent and got: statuses per route, every kind of non-2xx with when it came."""
        with self.tally.lock:
            tally = self.tally
            lines = [
                f"load: {len(tally.acknowledged)} events acknowledged ({tally.appended} appended, "
                f"{tally.duplicates} duplicates) over {self._since()} s"
            ]
            for (request, status), count in sorted(tally.statuses.items(), key=str):
                lines.append(f"  {request} → {status or 'no answer'}: {count}")
            kinds: dict[tuple[str, str, int | None, str, bool], list[float]] = {}
            for a in tally.answers:
                kinds.setdefault(
                    (a.client.split()[0], a.request, a.status, a.code, a.unavailable), []
                ).append(a.at_s)
            for (client, request, status, code, fine), times in sorted(kinds.items(), key=str):
                verdict = "expected" if fine else "FAILURE"
                lines.append(
                    f"  {verdict}: {client}s' {request} → {status or 'no answer'} {code}: {len(times)} "
                    f"between {min(times)} s and {max(times)} s"
                )
            lines += [f"  GAVE UP: {g}" for g in tally.gave_up]
        return "\n".join(lines)


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return response.text[:120].replace("\n", " ")
