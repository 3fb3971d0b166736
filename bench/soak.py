"""Soak: a running Cohortline under concurrent producers and readers for a bounded time (issue 15),
on the embedded default (`cohortline serve` on SQLite, projections in process) and on the full stack
(`cohortline serve` on PostgreSQL, `cohortline relay`, `cohortline worker`, Elasticsearch search).

    .venv/bin/python bench/soak.py [--seconds 180] [--stack embedded|full|both]
    (the full stack needs `cohortline services up` and `eval "$(cohortline services env)"`)

Producers POST batches of the UCI Online Retail invoices as catalogue events (bench/datasets.py), each
producer its own customers in order, as fast as the API answers; past the end of the data set a
producer sends its customers' histories again as new customers (ids suffixed with the pass), so the
load never stops. Readers cycle through the analytics routes. Per stack: a warm-up (not counted),
the measured run, then, once the read models have caught up, the same readers alone on the final data
(the unloaded baseline). Reported: requests, errors, p50/p99 latency by kind, events appended/s, each
process's RSS after the warm-up, halfway and at the end of the run, and the end checks: every
projection caught up (/v1/status lag 0) and the log holding exactly the events sent."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import NAMESPACE, online_retail_events  # noqa: E402
from tests.processes import Command, serve, wait_until  # noqa: E402
from tests.services import create_database, delete_index, drop_database, migrate, unique_name  # noqa: E402

BATCH = 500
WARM_UP_S = 15
BASELINE_S = 15
CATCH_UP_TIMEOUT_S = 1800
REQUEST_TIMEOUT_S = 120
ATTEMPTS = 3
"""An append that fails is sent again (the same event ids, so idempotent) before its producer gives up."""
KEYS = {"producer": "soak-producer", "reader": "soak-reader", "auditor": "soak-auditor"}
API_KEYS = ",".join(f"{key}:{role}" for role, key in KEYS.items())
RATE_LIMIT = "1000000/second"
"""The per-key limiter stays on, as in production, with a budget the soak never spends: it measures
the service, not a client's budget (the default would refuse four readers sharing a key)."""
NDJSON = "application/x-ndjson"
SERVICES = ("COHORTLINE_DATABASE_URL", "COHORTLINE_KAFKA_URL", "COHORTLINE_ELASTICSEARCH_URL")

RANGE = "from=2010-12-01&to=2011-12-31"
READS = {
    "cohorts": "/v1/retention/cohorts?granularity=month&cohort=first_seen&return=active&mode=on"
    f"&{RANGE}&periods=12",
    "activity": f"/v1/activity/active-users?granularity=week&{RANGE}",
    "revenue": f"/v1/value/revenue?granularity=month&{RANGE}",
    "overview": "/v1/overview?from=2011-09-01&to=2011-11-30",
    "search": "/v1/users/search?country=GB&min_orders=2&size=20",
    "user": "/v1/users/{user_id}",
    "status": "/v1/status",
}
KINDS = ("append", *READS)


class Lane:
    """One producer's customers' events in order, batch by batch; after the last, the same events
    again as new customers, orders and event ids (pass 2, 3, ...)."""

    def __init__(self, events: list[dict[str, Any]]):
        self.events = events
        self.passes = 1
        self.at = 0

    def next_batch(self, size: int) -> list[dict[str, Any]]:
        if self.at >= len(self.events):
            self.passes += 1
            self.at = 0
        chunk = self.events[self.at : self.at + size]
        self.at += len(chunk)
        return chunk if self.passes == 1 else [renamed(e, self.passes) for e in chunk]


def renamed(event: dict[str, Any], n: int) -> dict[str, Any]:
    data = event["data"]
    if "order_id" in data:
        data = {**data, "order_id": f"{data['order_id']}-{n}"}
    return {
        **event,
        "event_id": str(uuid.uuid5(NAMESPACE, f"soak-{n}:{event['event_id']}")),
        "user_id": f"{event['user_id']}-{n}",
        "data": data,
    }


def lanes_of(events: list[dict[str, Any]], count: int) -> list[Lane]:
    """Each lane gets whole customers, so a customer's order is paid after it is placed."""
    split: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for event in events:
        split[zlib.crc32(event["user_id"].encode()) % count].append(event)
    return [Lane(events) for events in split]


@dataclass
class Tally:
    """What the threads measured, by phase and kind; `phase` is set by the main thread, and a
    request counts in the phase it started in (None: between phases, not timed)."""

    phase: str | None = None
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    distinct_errors: dict[str, tuple[int, set[str]]] = field(default_factory=dict)
    """Each error text: how many times, and the phases and kinds of request it came from."""
    appended: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sent: list[str] = field(default_factory=list)
    gave_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, phase: str | None, kind: str, ms: float, error: str | None) -> None:
        with self.lock:
            if error is not None:
                self.errors[(phase or "between phases", kind)] += 1
                count, where = self.distinct_errors.get(error, (0, set()))
                self.distinct_errors[error] = (count + 1, where | {f"{phase or 'between phases'} {kind}"})
            elif phase is not None:
                self.latencies[(phase, kind)].append(ms)

    def acknowledged(self, phase: str | None, event_ids: list[str], appended: int) -> None:
        with self.lock:
            self.sent.extend(event_ids)
            self.appended[phase or "between phases"] += appended


def session_for(role: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEYS[role]}"
    return session


def append(session: requests.Session, base: str, batch: list[dict[str, Any]], tally: Tally) -> bool:
    """POST one batch, sending it again after a failure; whether it was acknowledged."""
    body = json.dumps({"events": batch})
    for attempt in range(ATTEMPTS):
        phase = tally.phase
        started = time.perf_counter()
        error = None
        try:
            response = session.post(
                f"{base}/v1/events",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=REQUEST_TIMEOUT_S,
            )
            if response.status_code != 201:
                error = f"HTTP {response.status_code} {response.text[:300].strip()}"
            elif attempt == 0 and response.json()["duplicates"]:
                error = f"HTTP 201 with {response.json()['duplicates']} duplicates on a first send"
        except requests.RequestException as e:
            error = repr(e)
        tally.record(phase, "append", (time.perf_counter() - started) * 1000, error)
        if error is None:
            tally.acknowledged(phase, [e["event_id"] for e in batch], response.json()["appended"])
            return True
        time.sleep(1)
    return False


def produce(base: str, lane: Lane, size: int, tally: Tally, stop: threading.Event) -> None:
    session = session_for("producer")
    while not stop.is_set():
        if not append(session, base, lane.next_batch(size), tally):
            with tally.lock:
                tally.gave_up += 1
            return  # its later events would need the ones refused (an order's payment, its order)


def read(base: str, offset: int, users: list[str], tally: Tally, stop: threading.Event) -> None:
    session = session_for("reader")
    kinds = list(READS)
    n = offset
    while not stop.is_set():
        kind = kinds[n % len(kinds)]
        path = READS[kind].format(user_id=users[n % len(users)])
        n += 1
        phase = tally.phase
        started = time.perf_counter()
        error = None
        try:
            response = session.get(f"{base}{path}", timeout=REQUEST_TIMEOUT_S)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code} {response.text[:300].strip()}"
        except requests.RequestException as e:
            error = repr(e)
        tally.record(phase, kind, (time.perf_counter() - started) * 1000, error)


def run_threads(targets: list[tuple[Any, tuple[Any, ...]]]) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=t, args=(*args, stop), daemon=True) for t, args in targets]
    for thread in threads:
        thread.start()
    return stop, threads


def halt(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT_S * ATTEMPTS + 10)


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children[int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])].append(
                    int(entry.name)
                )
            except (OSError, IndexError, ValueError):
                continue  # it exited meanwhile
    tree: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children[pid])
    return tree


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def label(command: Command, pid: int) -> str:
    if pid == command.process.pid:
        return "gunicorn arbiter" if command.name == "serve" else command.name
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    if "infra.server" in cmdline:
        return "projections process"
    return "API worker" if command.name == "serve" else f"{command.name} child"


def memory(commands: list[Command]) -> dict[int, tuple[str, int]]:
    """Each process of each command's tree: its label and RSS in kB."""
    found = {}
    for command in commands:
        for pid in process_tree(command.process.pid):
            kb = rss_kb(pid)
            if kb is not None:
                found[pid] = (f"{command.name}: {label(command, pid)} {pid}", kb)
    return found


def status(base: str) -> dict[str, Any]:
    response = session_for("reader").get(f"{base}/v1/status", timeout=30)
    response.raise_for_status()
    return response.json()


def caught_up(base: str, head: int) -> dict[str, Any] | None:
    now = status(base)
    if now["head"] == head and all(p["lag_events"] == 0 for p in now["projections"]):
        return now
    return None


def logged_event_ids(base: str) -> list[str]:
    """The event id of every event in the log, in order (GET /v1/audit/log as NDJSON)."""
    session = session_for("auditor")
    with session.get(
        f"{base}/v1/audit/log", headers={"Accept": NDJSON}, stream=True, timeout=REQUEST_TIMEOUT_S
    ) as response:
        response.raise_for_status()
        return [json.loads(line)["event_id"] for line in response.iter_lines() if line]


def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def quantiles_text(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = percentiles(values)
    return f"{p50:9.1f} / {p99:9.1f}"


@dataclass
class Stack:
    name: str
    description: str
    base: str
    commands: list[Command]


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    return env | {"COHORTLINE_API_KEYS": API_KEYS, "COHORTLINE_RATE_LIMIT": RATE_LIMIT, **settings}


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A temporary directory for the stack's files and logs, kept (and named) when the run fails."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-soak-{name}-"))
    try:
        yield workdir
    except BaseException:
        print(f"{name}: the processes' logs are kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def embedded_stack(workers: int) -> Iterator[Stack]:
    with workspace("embedded") as workdir:
        env = clean_env(COHORTLINE_DATABASE_URL=f"sqlite:///{workdir / 'soak.db'}")
        server, base = serve(env, workdir, "--workers", str(workers))
        try:
            yield Stack(
                "embedded",
                f"cohortline serve on SQLite, projections in process, {workers} API workers",
                base,
                [server],
            )
        finally:
            server.stop()


@contextmanager
def full_stack(workers: int) -> Iterator[Stack]:
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"])
    env = clean_env(
        COHORTLINE_DATABASE_URL=url,
        COHORTLINE_KAFKA_URL=os.environ["COHORTLINE_KAFKA_URL"],
        COHORTLINE_ELASTICSEARCH_URL=os.environ["COHORTLINE_ELASTICSEARCH_URL"],
        COHORTLINE_KAFKA_TOPIC=unique_name("bench.soak"),
        COHORTLINE_ELASTICSEARCH_INDEX=unique_name("bench-soak-users"),
    )
    commands: list[Command] = []
    try:
        migrate(url)
        with workspace("full") as workdir:
            try:
                server, base = serve(env, workdir, "--workers", str(workers))
                commands.append(server)
                commands.append(Command(["relay"], env, workdir, "relay"))
                commands.append(Command(["worker"], env, workdir, "worker"))
                yield Stack(
                    "full",
                    f"cohortline serve on PostgreSQL ({postgres_durability(url)}), {workers} API workers, "
                    "+ relay + worker (Kafka), Elasticsearch search",
                    base,
                    commands,
                )
            finally:
                for command in reversed(commands):
                    command.stop()
    finally:
        drop_database(url)
        delete_index(env["COHORTLINE_ELASTICSEARCH_URL"], env["COHORTLINE_ELASTICSEARCH_INDEX"])
        delete_topic(env["COHORTLINE_KAFKA_URL"], env["COHORTLINE_KAFKA_TOPIC"])


def postgres_durability(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW fsync")
            return f"fsync {cursor.fetchone()[0]}"
    finally:
        conn.close()


def delete_topic(kafka_url: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_url.removeprefix("kafka://"))
        await admin.start()
        try:
            if topic in await admin.list_topics():  # the relay creates it when it starts
                await admin.delete_topics([topic])
        finally:
            await admin.close()

    asyncio.run(delete())


def progress(stack: Stack, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stack.name}: {message}", file=sys.stderr, flush=True)


def soak(stack: Stack, events: list[dict[str, Any]], args: argparse.Namespace) -> bool:
    """Run the load on `stack` and print what it measured; whether it ran without errors and ended
    caught up with the log holding exactly the events sent."""
    lanes = lanes_of(events, args.producers)
    tally = Tally()
    seed = session_for("producer")
    users: list[str] = []
    progress(stack, "seeding one batch per producer")
    tally.phase = "seed"
    for lane in lanes:
        batch = lane.next_batch(args.batch)
        if not append(seed, stack.base, batch, tally):
            raise SystemExit(
                f"{stack.name}: the seed batch was refused:\n" + "\n".join(tally.distinct_errors)
            )
        users.extend(dict.fromkeys(e["user_id"] for e in batch))
    wait_until(
        lambda: caught_up(stack.base, len(tally.sent)), 300, "the seed to be projected", *stack.commands
    )

    progress(stack, f"warm-up, {WARM_UP_S} s")
    tally.phase = "warm-up"
    producers = [(produce, (stack.base, lane, args.batch, tally)) for lane in lanes]
    readers = [(read, (stack.base, i, users, tally)) for i in range(args.readers)]
    stop, threads = run_threads(producers + readers)
    time.sleep(WARM_UP_S)
    warm_rss = memory(stack.commands)
    progress(stack, f"loaded, {args.seconds} s")
    tally.phase = "loaded"
    started = time.perf_counter()
    time.sleep(args.seconds / 2)
    half_rss = memory(stack.commands)
    time.sleep(args.seconds / 2)
    end_rss = memory(stack.commands)
    tally.phase = None
    loaded_s = time.perf_counter() - started
    halt(stop, threads)
    for command in stack.commands:
        if not command.alive():
            raise SystemExit(f"{stack.name}: {command.name} exited during the run:\n{command.output()}")

    progress(stack, f"waiting for the read models to catch up with {len(tally.sent):,} events")
    catch_up_started = time.perf_counter()
    final = wait_until(
        lambda: caught_up(stack.base, len(tally.sent)),
        CATCH_UP_TIMEOUT_S,
        "the read models to catch up",
        *stack.commands,
    )
    catch_up_s = time.perf_counter() - catch_up_started

    progress(stack, f"baseline: the readers alone, {BASELINE_S} s")
    tally.phase = "baseline"
    stop, threads = run_threads(readers)
    time.sleep(BASELINE_S)
    tally.phase = None
    halt(stop, threads)

    progress(stack, "reading the log")
    logged = logged_event_ids(stack.base)
    rss = (warm_rss, half_rss, end_rss)
    return report(stack, args, tally, loaded_s, rss, final, catch_up_s, logged, lanes)


def print_rss(
    warm: dict[int, tuple[str, int]], half: dict[int, tuple[str, int]], end: dict[int, tuple[str, int]]
) -> None:
    """Each process's RSS after the warm-up, halfway and at the end, and its growth over each half:
    a process that levels off grows less in the second half than in the first."""
    print(f"   {'RSS (MB)':<44} {'warm-up':>8} {'half':>8} {'end':>8}   {'1st half':>9} {'2nd half':>9}")
    for pid in sorted(warm.keys() | half.keys() | end.keys()):
        name = (warm.get(pid) or half.get(pid) or end[pid])[0]
        sizes = [sample.get(pid, (name, 0))[1] / 1024 for sample in (warm, half, end)]
        if all(sizes):
            growth = f"{sizes[1] - sizes[0]:+9.1f} {sizes[2] - sizes[1]:+9.1f}"
        else:
            growth = "(started later)" if sizes[2] else "(exited)"
        print(f"   {name:<44} {sizes[0]:>8.1f} {sizes[1]:>8.1f} {sizes[2]:>8.1f}   {growth:>19}")


def report(
    stack: Stack,
    args: argparse.Namespace,
    tally: Tally,
    loaded_s: float,
    rss: tuple[dict[int, tuple[str, int]], ...],
    final: dict[str, Any],
    catch_up_s: float,
    logged: list[str],
    lanes: list[Lane],
) -> bool:
    print(f"\n== {stack.name}: {stack.description}")
    print(
        f"   {args.producers} producers (batches of {args.batch}), {args.readers} readers; {WARM_UP_S} s "
        f"warm-up (not counted), {loaded_s:.0f} s measured; unloaded: the readers alone for {BASELINE_S} s "
        f"on the final data, once caught up; {os.cpu_count()} cores, shared with the load generator"
    )
    columns = f"{'requests':>9} {'errors':>7}   {'loaded p50 / p99 ms':>21}   {'unloaded p50 / p99 ms':>23}"
    print(f"   {'kind':<10} {columns}")
    for kind in KINDS:
        loaded = tally.latencies.get(("loaded", kind), [])
        baseline = tally.latencies.get(("baseline", kind), [])
        errors = tally.errors.get(("loaded", kind), 0)
        shown, unloaded = quantiles_text(loaded), quantiles_text(baseline)
        print(f"   {kind:<10} {len(loaded) + errors:>9,} {errors:>7}   {shown:>21}   {unloaded:>23}")
    appended = tally.appended["loaded"]
    passes = max(lane.passes for lane in lanes)
    print(
        f"   events appended: {appended / loaded_s:,.0f}/s ({appended:,} in the measured run; "
        f"{len(tally.sent):,} sent in all, data set pass {passes} reached)"
    )
    if tally.distinct_errors:
        total = sum(count for count, _ in tally.distinct_errors.values())
        print(f"   errors, each distinct one once ({total:,} in all):")
        for error, (count, where) in tally.distinct_errors.items():
            print(f"     {count:>6,} x {error}\n              in {', '.join(sorted(where))}")
    else:
        print("   errors: none")
    if tally.gave_up:
        print(f"   {tally.gave_up} producer(s) gave up after {ATTEMPTS} failed sends of a batch")
    print_rss(*rss)
    lags = ", ".join(f"{p['name']} {p['lag_events']}" for p in final["projections"])
    parked = sum(p["dead_letters"]["count"] for p in final["projections"])
    stopped = [p["name"] for p in final["projections"] if p["state"] != "running"]
    print(
        f"   caught up {catch_up_s:.1f} s after the load stopped: head {final['head']:,}, lag {lags}; "
        f"dead letters {parked}; {'stopped: ' + ', '.join(stopped) if stopped else 'all running'}; "
        f"backends {', '.join(f'{k}={v}' for k, v in final['backends'].items())}"
    )
    sent, found = set(tally.sent), set(logged)
    exact = len(logged) == len(found) == len(sent) == len(tally.sent) and found == sent
    verdict = (
        "the log holds exactly the events sent"
        if exact
        else f"MISMATCH: {len(sent - found):,} sent not logged, {len(found - sent):,} logged not sent"
    )
    print(
        f"   log: {len(logged):,} events, {len(found):,} distinct event ids; sent {len(tally.sent):,} "
        f"events, {len(sent):,} distinct; {verdict}"
    )
    sys.stdout.flush()
    return exact and not tally.distinct_errors and not stopped and not parked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=180, help="measured run per stack, after the warm-up")
    parser.add_argument("--stack", choices=("embedded", "full", "both"), default="both")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=BATCH, help="events per POST /v1/events")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="API worker processes")
    args = parser.parse_args()
    stacks = {"embedded": [embedded_stack], "full": [full_stack], "both": [embedded_stack, full_stack]}
    if args.stack in ("full", "both") and not all(os.environ.get(v) for v in SERVICES):
        raise SystemExit(
            'the full stack needs `cohortline services up` and `eval "$(cohortline services env)"`'
        )
    events = list(online_retail_events())
    customers = len({e["user_id"] for e in events})
    print(f"{len(events):,} Online Retail events of {customers:,} customers to send per pass")
    failed = []
    for stack in stacks[args.stack]:
        with stack(args.workers) as running:
            if not soak(running, events, args):
                failed.append(running.name)
    if failed:
        raise SystemExit(
            f"not clean: {', '.join(failed)} (errors, a projection behind or stopped, or the log differs)"
        )


if __name__ == "__main__":
    main()
