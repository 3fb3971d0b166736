"""`cohortline import` as a real process on slices of the real data sets: into SQLite, into
PostgreSQL and over HTTP to a running server, each twice (the second run appends nothing); the read
models then equal numbers computed straight from the slice. An import killed part way resumes
without duplicates, and a bad line stops it naming the line and the field."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import requests

from bench.datasets import data_file
from infra.bootstrap import build_system
from infra.config import load_settings
from projections.orders import repurchase
from projections.retention import retention
from projections.tracking import progress
from tests.processes import serve, wait_until

SUMMARY = re.compile(
    r"imported (?P<name>\S+): read (?P<read>[\d,]+) (?P<unit>\w+), appended (?P<appended>[\d,]+), "
    r"duplicates (?P<duplicates>[\d,]+), [\d.]+ s, [\d,]+ events/s$"
)


@dataclass(frozen=True)
class Expected:
    """What a slice holds, computed from its rows without Cohortline's code."""

    events: int
    first_day: date
    last_day: date
    cohorts: dict[str, list[int]]
    """First-order month → customers ordering in month k (k = 0: the cohort's size)."""
    customers: int
    repeat_customers: int


def months_between(a: str, b: str) -> int:
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7])


def expected(orders: dict[str, tuple[str, str]], events: int) -> Expected:
    """From order id → (customer, ISO time of placement)."""
    months: dict[str, set[str]] = defaultdict(set)
    per_customer: dict[str, int] = defaultdict(int)
    for customer, at in orders.values():
        months[customer].add(at[:7])
        per_customer[customer] += 1
    cohorts: dict[str, list[set[str]]] = defaultdict(lambda: [set() for _ in range(24)])
    for customer, seen in months.items():
        first = min(seen)
        for month in seen:
            cohorts[first][months_between(first, month)].add(customer)
    days = sorted(at[:10] for _, at in orders.values())
    return Expected(
        events=events,
        first_day=date.fromisoformat(days[0]),
        last_day=date.fromisoformat(days[-1]),
        cohorts={c: [len(s) for s in offsets] for c, offsets in cohorts.items()},
        customers=len(per_customer),
        repeat_customers=sum(1 for n in per_customer.values() if n >= 2),
    )


def online_retail_slice(path: Path, every: int = 100) -> Expected:
    """The rows of every `every`-th customer (cancellations included) and the rows without a customer
    among the first 300, gzipped; and what they hold."""
    kept, orders, lines = [], {}, 0
    with gzip.open(data_file("online_retail/online_retail.csv.gz"), "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        for n, row in enumerate(reader):
            customer = row["CustomerID"]
            if (customer and int(customer) % every == 0) or (not customer and n < 300):
                kept.append(row)
                if customer and not row["InvoiceNo"][0].isalpha():
                    lines += 1
                    orders.setdefault(row["InvoiceNo"], (customer, row["InvoiceDate"]))
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    return expected(orders, lines + 3 * len(orders))


def cdnow_slice(path: Path, rows: int = 2000) -> Expected:
    """The first `rows` rows of CDNOW (its first customers, all their purchases); what they hold."""
    with gzip.open(data_file("cdnow/cdnow_master.csv.gz"), "rt", newline="") as handle:
        head = [next(handle) for _ in range(rows + 1)]
    path.write_text("".join(head))
    orders = {f"{r['customer_id']}-{r['date']}": (r["customer_id"], r["date"]) for r in csv.DictReader(head)}
    return expected(orders, 2 * len(orders))


def environment(database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    if database_url:
        env["COHORTLINE_DATABASE_URL"] = database_url
    return {**env, **extra}


def cohortline(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def imported(done: subprocess.CompletedProcess) -> dict[str, int]:
    assert done.returncode == 0, done.stderr[-3000:]
    found = SUMMARY.fullmatch(done.stdout.strip().splitlines()[-1])
    assert found, done.stdout
    return {k: int(found[k].replace(",", "")) for k in ("read", "appended", "duplicates")}


def assert_progress_bar(stderr: str, kind: str) -> None:
    """tqdm's bar on stderr: the kind, all of the total, the time taken and left, the rate."""
    bar = rf"import {kind}: +100%\|[^|]*\| ([\d.]+k?)/\1 \[[\d:]+<[\d:]+, +[\d.]+k? events/s\]"
    assert re.search(bar, stderr), stderr[-2000:]


def twice(env: dict[str, str], cwd: Path, kind: str, path: Path, want: Expected, *extra: str) -> None:
    """Import, then import again: everything is appended once, the second run finds only duplicates."""
    first = cohortline(env, cwd, "import", kind, str(path), *extra)
    assert imported(first) == {"read": want.events, "appended": want.events, "duplicates": 0}
    assert_progress_bar(first.stderr, kind)
    again = cohortline(env, cwd, "import", kind, str(path), *extra)
    assert imported(again) == {"read": want.events, "appended": 0, "duplicates": want.events}


def check_read_models(database_url: str, want: Expected) -> None:
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": database_url}))
    try:
        assert system.log_reader().head() == want.events
        with system.engine.connect() as conn:
            applied = progress(conn, "analytics", None)
            assert applied.position == want.events
            rows = retention(
                conn,
                "month",
                "first_order",
                "order",
                "on",
                want.first_day,
                want.last_day,
                23,
                applied.watermark,
            )
            answer = repurchase(conn, want.first_day, want.last_day)
    finally:
        system.close()
    same_cohorts(rows, want)
    assert (answer["customers"], answer["repeat_customers"]) == (want.customers, want.repeat_customers)


def same_cohorts(rows: list[dict], want: Expected) -> None:
    assert {r["cohort"] for r in rows} == set(want.cohorts)
    for row in rows:
        assert row["values"] == want.cohorts[row["cohort"]][: len(row["values"])], row["cohort"]


def test_online_retail_into_sqlite_twice(tmp_path):
    want = online_retail_slice(tmp_path / "slice.csv.gz")
    assert want.events > 3000 and len(want.cohorts) > 6
    url = f"sqlite:///{tmp_path / 'c.db'}"
    twice(environment(url), tmp_path, "online-retail", tmp_path / "slice.csv.gz", want)
    check_read_models(url, want)


def test_cdnow_into_postgresql_twice(tmp_path, pg_url):
    want = cdnow_slice(tmp_path / "cdnow.csv")
    assert want.customers > 500 and want.repeat_customers > 100
    twice(environment(pg_url), tmp_path, "cdnow", tmp_path / "cdnow.csv", want, "--batch-size", "500")
    check_read_models(pg_url, want)


def test_over_http_to_a_running_server_twice(tmp_path):
    want = online_retail_slice(tmp_path / "slice.csv.gz")
    env = environment(
        f"sqlite:///{tmp_path / 'c.db'}",
        COHORTLINE_API_KEYS="prod:producer,read:reader",
        COHORTLINE_RATE_LIMIT="off",
    )
    server, base = serve(env, tmp_path, "--workers", "2")
    try:
        client = environment(COHORTLINE_API_KEY="prod")
        twice(client, tmp_path, "online-retail", tmp_path / "slice.csv.gz", want, "--url", base)
        reader = {"Authorization": "Bearer read"}
        head = requests.get(f"{base}/v1/status", headers=reader, timeout=10).json()["head"]
        assert head == want.events
        query = {"from": want.first_day.isoformat(), "to": want.last_day.isoformat(), "min_position": head}
        answer = wait_until(
            lambda: (
                (
                    r := requests.get(
                        f"{base}/v1/orders/repurchase", params=query, headers=reader, timeout=10
                    )
                ).status_code
                == 200
                and r.json()
            ),
            60,
            "the read models at the head",
            server,
        )
        assert (answer["customers"], answer["repeat_customers"]) == (want.customers, want.repeat_customers)
        cohorts = requests.get(
            f"{base}/v1/retention/cohorts",
            params={**query, "cohort": "first_order", "return": "order", "granularity": "month"},
            headers=reader,
            timeout=10,
        ).json()["cohorts"]
        same_cohorts(cohorts, want)

        refused = cohortline(
            environment(), tmp_path, "import", "online-retail", str(tmp_path / "slice.csv.gz"), "--url", base
        )
        assert refused.returncode == 2
        assert f"POST {base}/v1/events answered 401" in refused.stderr and '"code"' in refused.stderr
    finally:
        assert server.stop() == 0, server.output()


def test_a_killed_import_resumes_without_duplicates(tmp_path):
    want = online_retail_slice(tmp_path / "slice.csv.gz")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["import", "online-retail", str(tmp_path / "slice.csv.gz"), "--batch-size", "5"]
    with (tmp_path / "killed.log").open("w") as log:
        killed = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            env=environment(url),
            cwd=tmp_path,
            stdout=log,
            stderr=log,
        )
        try:
            wait_until(lambda: 50 < recorded(tmp_path / "c.db") < want.events // 2, 60, "part of the import")
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait(30)
    written = recorded(tmp_path / "c.db")
    assert 0 < written < want.events and written % 5 == 0  # whole batches only
    resumed = imported(cohortline(environment(url), tmp_path, *args))
    assert resumed == {"read": want.events, "appended": want.events - written, "duplicates": written}
    check_read_models(url, want)


def recorded(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM cohortline_events").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def test_a_bad_line_stops_the_import_naming_it_and_writes_nothing_of_its_batch(tmp_path):
    def order(n: int, amount: str) -> str:
        return json.dumps(
            {
                "event_id": f"00000000-0000-4000-8000-{n:012d}",
                "type": "OrderPlaced",
                "user_id": "u1",
                "occurred_at": f"2024-01-0{n}T10:00:00Z",
                "data": {"order_id": f"o{n}", "amount": amount, "currency": "EUR"},
            }
        )

    path = tmp_path / "events.ndjson"
    path.write_text(
        "\n".join([order(1, "10"), order(2, "12.50"), order(3, "5"), order(4, "abc"), order(5, "1")])
    )
    url = f"sqlite:///{tmp_path / 'c.db'}"
    done = cohortline(environment(url), tmp_path, "import", "ndjson", str(path), "--batch-size", "2")
    assert done.returncode == 2, done.stderr
    assert "line 4: data.amount: must be a plain decimal string" in done.stderr
    assert "stopped after 2 lines (appended 2, duplicates 0)" in done.stderr
    assert recorded(tmp_path / "c.db") == 2  # lines 1-2; line 3 shared the bad line's batch


def test_segment_messages_and_envelopes_from_ndjson_twice(tmp_path):
    """Segment messages (orders, pages) and our envelopes in one gzipped file: the orders reach the
    read models; a rerun finds only duplicates."""
    lines, orders = [], {}
    for n in range(120):
        customer, day = f"c{n % 40}", f"2024-{1 + n // 40:02d}-{1 + n % 28:02d}"
        orders[f"o{n}"] = (customer, day)
        lines.append(
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"m{n}",
                "userId": customer,
                "timestamp": f"{day}T09:00:00Z",
                "properties": {"order_id": f"o{n}", "revenue": 10 + n, "currency": "EUR"},
            }
        )
        lines.append(
            {
                "type": "page",
                "name": "Cart",
                "messageId": f"p{n}",
                "userId": customer,
                "timestamp": f"{day}T08:59:00Z",
            }
        )
    lines += [
        {
            "type": "SessionStarted",
            "user_id": "c1",
            "occurred_at": "2024-03-30T10:00:00Z",
            "event_id": str(uuid.UUID(int=7)),
        }
    ]
    path = tmp_path / "events.ndjson.gz"
    with gzip.open(path, "wt") as out:
        out.write("\n".join(json.dumps(line) for line in lines) + "\n")
    want = expected(orders, 3 * 120 + 1)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = cohortline(environment(url), tmp_path, "import", "ndjson", str(path), "--batch-size", "100")
    assert imported(first) == {"read": len(lines), "appended": want.events, "duplicates": 0}
    assert re.search(r"import ndjson: +100%.* lines/s\]", first.stderr), first.stderr[-2000:]
    again = cohortline(environment(url), tmp_path, "import", "ndjson", str(path), "--batch-size", "100")
    assert imported(again) == {"read": len(lines), "appended": 0, "duplicates": want.events}
    check_read_models(url, want)
