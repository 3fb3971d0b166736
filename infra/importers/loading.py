"""Batches of a source into a sink (the configured event store, or POST /v1/events over HTTP), with a
progress bar; and the projection in process afterwards, with its own."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from domain.errors import BatchRejected
from infra.importers.source import Batch, ImportFailed, Source

HTTP_MAX_EVENTS = 1000
"""The most events POST /v1/events takes in one request."""
RETRIES = 5
RETRY_PAUSE_S = 0.5
"""The first pause before a retry; it doubles each time (a Retry-After header is honoured)."""
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class Sink(Protocol):
    def write(self, batch: Batch) -> tuple[int, int]:
        """Record the batch's events, all or none; (appended, duplicates)."""
        ...


class StoreSink:
    """The configured event store, in process."""

    def __init__(self, event_store: Any):
        self.event_store = event_store

    def write(self, batch: Batch) -> tuple[int, int]:
        try:
            recorded = self.event_store.record(
                [e.envelope for e in batch.events], idempotency=batch.idempotency
            )
        except BatchRejected as rejected:
            found = rejected.conflicts[0]
            more = (
                f" (and {len(rejected.conflicts) - 1} more in its batch)"
                if len(rejected.conflicts) > 1
                else ""
            )
            raise ImportFailed(
                f"line {batch.events[found.index].line}: {found.code}: {found.message}{more}"
            ) from None
        return recorded.appended, recorded.duplicates


class HttpSink:
    """POST /v1/events of a running Cohortline. urllib3's Retry sends a request again when it fails
    to connect, times out, or gets a 5xx or 429, pausing `pause_s` and then twice as long each time
    (or the server's Retry-After): the same batch again is safe, its event ids are known. Any other
    4xx stops the import with the server's error body."""

    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        retries: int = RETRIES,
        pause_s: float = RETRY_PAUSE_S,
        timeout_s: float = 120,
    ):
        self.endpoint = url.rstrip("/") + "/v1/events"
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        retry = Retry(
            total=retries,
            backoff_factor=pause_s,
            backoff_max=60,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=frozenset({"POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, HTTPAdapter(max_retries=retry))
        self.retries = retries
        self.timeout_s = timeout_s

    def write(self, batch: Batch) -> tuple[int, int]:
        if len(batch.events) > HTTP_MAX_EVENTS:
            raise ImportFailed(f"a batch of {len(batch.events)} events is more than POST /v1/events takes")
        body = json.dumps({"events": [e.as_json() for e in batch.events]}, separators=(",", ":"))
        try:
            response = self.session.post(self.endpoint, data=body.encode(), timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise ImportFailed(
                f"POST {self.endpoint} failed {self.retries + 1} times; the last: {e}"
            ) from None
        except requests.RequestException as e:  # e.g. a malformed URL: sending again will not help
            raise ImportFailed(f"POST {self.endpoint}: {e}") from None
        if response.status_code == 201:
            answer = response.json()
            return int(answer["appended"]), int(answer["duplicates"])
        if response.status_code in RETRIED_STATUSES:
            raise ImportFailed(
                f"POST {self.endpoint} failed {self.retries + 1} times; the last: "
                f"HTTP {response.status_code}: {response.text[:300]}"
            )
        raise ImportFailed(self._rejected(response, batch))

    def _rejected(self, response: requests.Response, batch: Batch) -> str:
        """The server's answer, and the file's lines its details name by index."""
        text = f"POST {self.endpoint} answered {response.status_code}: {response.text.strip()}"
        try:
            details = response.json()["error"].get("details") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            return text
        lines = [
            f"line {batch.events[d['index']].line}: {d.get('field') or d.get('code')}: {d.get('message')}"
            for d in details
            if isinstance(d, dict) and isinstance(d.get("index"), int) and 0 <= d["index"] < len(batch.events)
        ]
        return "\n".join([*lines[:10], text])


@dataclass
class Outcome:
    """What an import did. `seconds` runs from opening the file to the last batch written."""

    name: str
    unit: str
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    read_s: float = 0.0
    """Of `seconds`, reading and counting the file before the first batch."""

    @property
    def events_per_s(self) -> float:
        return (self.appended + self.duplicates) / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"imported {self.name}: read {self.read:,} {self.unit}, appended {self.appended:,}, "
            f"duplicates {self.duplicates:,}, {self.seconds:.1f} s, {self.events_per_s:,.0f} events/s"
        )


class Interrupted(ImportFailed):
    """The import stopped part way (a bad line, a rejected batch, Ctrl-C); `outcome` says how far."""

    def __init__(self, message: str, outcome: Outcome, *, by_user: bool = False):
        super().__init__(message)
        self.outcome = outcome
        self.by_user = by_user


def load(
    open_source: Callable[[], Source],
    sink: Sink,
    batch_size: int,
    progress: IO[str] | None = sys.stderr,
    description: str = "import",
) -> Outcome:
    """Open (read and count) the source, then write it batch by batch with a progress bar of its
    units, their rate and the time left. Interrupted when a batch cannot be written: the batches
    before it stay written, and a rerun counts them as duplicates."""
    started = time.perf_counter()
    outcome = Outcome("", "events")
    bar = None
    try:
        source = open_source()
        outcome.name, outcome.unit, outcome.read_s = source.name, source.unit, time.perf_counter() - started
        bar = tqdm(
            total=source.total,
            unit=f" {source.unit}",
            unit_scale=True,
            desc=description,
            file=progress,
            disable=progress is None,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        for batch in ahead(source.batches(batch_size)):
            if batch.events:
                appended, duplicates = sink.write(batch)
                outcome.appended += appended
                outcome.duplicates += duplicates
            outcome.duplicates += batch.skipped
            outcome.read += batch.read
            bar.update(batch.read)
    except ImportFailed as failed:
        outcome.seconds = time.perf_counter() - started
        raise Interrupted(str(failed), outcome) from None
    except KeyboardInterrupt:
        outcome.seconds = time.perf_counter() - started
        raise Interrupted("interrupted", outcome, by_user=True) from None
    finally:
        if bar is not None:
            bar.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


_END = object()


def ahead(batches: Iterator[Batch]) -> Iterator[Batch]:
    """The same batches, each read, mapped and validated in a thread while the one before is
    written. What the source raises comes in its place, after the batches before it."""
    with ThreadPoolExecutor(1, thread_name_prefix="import-batches") as pool:
        pending = pool.submit(next, batches, _END)
        while (batch := pending.result()) is not _END:
            pending = pool.submit(next, batches, _END)
            yield batch


@dataclass(frozen=True)
class Projected:
    events: int
    seconds: float


def project(system: Any, progress: IO[str] | None = sys.stderr, batch_size: int = 1000) -> Projected:
    """Apply what the log holds beyond the projections' positions in process (the embedded default),
    batch by batch, with a progress bar."""
    from projections.tracking import LOCAL_PARTITION, positions
    from streams.local import LocalFollower

    started = time.perf_counter()
    reader = system.log_reader()
    head = reader.head()
    with system.engine.connect() as conn:
        behind = [head - positions(conn, r.name).get(LOCAL_PARTITION, 0) for r in system.runners]
    if max(behind, default=0) <= 0:
        return Projected(0, time.perf_counter() - started)
    follower = LocalFollower(reader, system.runners, batch_size=batch_size)
    applied = 0
    with tqdm(
        total=max(behind, default=0),
        unit=" events",
        unit_scale=True,
        desc="project",
        file=progress,
        disable=progress is None,
        dynamic_ncols=True,
        mininterval=0.5,
    ) as bar:
        while read := follower.step():
            step = read // max(len(system.runners), 1)
            applied += step
            bar.update(step)
    halted = [r.name for r in system.runners if r.halted]
    if halted:
        raise ImportFailed(
            f"projection {', '.join(halted)} halted (GET /v1/status and the log say why); the events are recorded"
        )
    return Projected(applied, time.perf_counter() - started)
