"""Import throughput: `cohortline import online-retail` (events/s, from opening the file to the last
batch written) into the embedded SQLite store and over HTTP to an embedded server, beside baselines
measured in the same run on the same events: the bare record() loop in process, and POST /v1/events
of the same batches from a plain requests loop (both given the events ready made, so the command's
figure also pays for reading and mapping the CSV, shown on its own); and POST /v1/batch of the same
history as Segment messages, beside the same POST /v1/events baseline.

    .venv/bin/python bench/importing.py [--events 100000]

The events are the first UCI Online Retail invoices (sessions, product views, orders and payments),
written as a slice of the CSV that the command imports. Every figure is on a fresh SQLite file; the
server runs with --no-projections, so both HTTP figures are ingestion alone."""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.datasets import data_file  # noqa: E402
from domain.envelope import parse_envelope  # noqa: E402
from infra.bootstrap import build_system  # noqa: E402
from infra.config import load_settings  # noqa: E402
from infra.importers.online_retail import events, read_rows  # noqa: E402
from tests.processes import Command, free_port, wait_until  # noqa: E402

BATCH = 1000
RATE = re.compile(r", ([\d,]+) events/s$")
PROJECTED = re.compile(r"projected [\d,]+ events in ([\d.]+) s")


def write_slice(path: Path, wanted: int) -> int:
    """The CSV's lines up to the customer invoice that brings the mapped events to `wanted`; how many
    events they map to."""
    with gzip.open(data_file("online_retail/online_retail.csv.gz"), "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        invoice_at, customer_at = header.index("InvoiceNo"), header.index("CustomerID")
        kept: list[list[str]] = []
        counted, invoices = 0, set()
        for row in reader:
            invoice = row[invoice_at]
            kept_by_mapping = row[customer_at] and not invoice[0].isalpha()
            if kept_by_mapping and invoice not in invoices:
                if counted >= wanted:
                    break
                invoices.add(invoice)
                counted += 3
            counted += 1 if kept_by_mapping else 0
            kept.append(row)
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(kept)
    return counted


def env(database: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    return {**clean, "COHORTLINE_DATABASE_URL": f"sqlite:///{database}", **extra}


def record_loop(database: Path, raw: list[dict[str, Any]]) -> float:
    """Events/s of parse_envelope + record() in batches of BATCH, in process."""
    system = build_system(load_settings(env(database)))
    try:
        started = time.perf_counter()
        for i in range(0, len(raw), BATCH):
            system.event_store.record([parse_envelope(e) for e in raw[i : i + BATCH]])
        elapsed = time.perf_counter() - started
        assert system.log_reader().head() == len(raw)
    finally:
        system.close()
    return len(raw) / elapsed


def run_import(environment: dict[str, str], workdir: Path, *args: str) -> tuple[float, float, float | None]:
    """The command's own events/s, its wall time, and the seconds it projected (embedded)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "import", "online-retail", *args],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed:\n{done.stderr[-3000:]}")
    rate = RATE.search(done.stdout.strip().splitlines()[-1])
    assert rate, done.stdout
    projected = PROJECTED.search(done.stderr)
    return float(rate[1].replace(",", "")), wall, float(projected[1]) if projected else None


def server(database: Path, workdir: Path) -> tuple[Command, str]:
    port = free_port()
    command = Command(
        ["serve", "--port", str(port), "--workers", "2", "--no-projections"],
        env(database, COHORTLINE_API_KEYS="bench:producer+reader"),
        workdir,
        f"serve-{database.stem}",
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: requests.get(f"{base}/v1/status", timeout=2).status_code in (200, 401), 60, "the API", command
    )
    return command, base


def posting_rate(base: str, route: str, bodies: list[str], events: int, status: int) -> float:
    """Events/s appended by POSTing the bodies (made beforehand) to `route` one after the other."""
    session = requests.Session()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    started = time.perf_counter()
    for body in bodies:
        response = session.post(f"{base}{route}", data=body, headers=headers, timeout=120)
        if response.status_code != status:
            raise SystemExit(f"{response.status_code}: {response.text[:500]}")
    return events / (time.perf_counter() - started)


def batches_of(items: list[dict[str, Any]], key: str) -> list[str]:
    return [json.dumps({key: items[i : i + BATCH]}) for i in range(0, len(items), BATCH)]


def segment_messages(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same history as Segment's libraries would send it: a session as a custom track, a product
    view as `Product Viewed`, an order and its payment as one `Order Completed` (which Cohortline
    records as the same two events)."""
    messages = []
    for event in raw:
        kind, data = event["type"], event["data"]
        if kind == "OrderPaid":
            continue
        message = {
            "type": "track",
            "userId": event["user_id"],
            "messageId": event["event_id"],
            "timestamp": event["occurred_at"],
            "context": {"channel": "browser", "location": {"country": event["context"].get("country", "")}},
        }
        if kind == "SessionStarted":
            message |= {"event": "Application Opened"}
        elif kind == "SceneVisited":
            message |= {"event": "Product Viewed", "properties": {"product_id": data["page"]}}
        else:
            products = [
                {"sku": i["sku"], "quantity": i["quantity"], "price": i["unit_price"]} for i in data["items"]
            ]
            properties = {"order_id": data["order_id"], "total": data["amount"], "currency": data["currency"]}
            message |= {"event": "Order Completed", "properties": properties | {"products": products}}
        messages.append(message)
    return messages


def head(base: str) -> int:
    return requests.get(f"{base}/v1/status", headers={"Authorization": "Bearer bench"}, timeout=10).json()[
        "head"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-importing-"))
    try:
        path = workdir / "online_retail_slice.csv.gz"
        total = write_slice(path, args.events)
        started = time.perf_counter()
        raw = [event for _, event in events(read_rows(path))]
        mapping_s = time.perf_counter() - started
        assert len(raw) == total
        invoices = sum(1 for e in raw if e["type"] == "OrderPlaced")
        print(
            f"{total:,} Online Retail events (the first {invoices:,} customer invoices), batches of {BATCH:,}, "
            f"SQLite (embedded default), {os.cpu_count()} cores"
        )

        baseline = record_loop(workdir / "record.db", raw)
        rate, wall, projected = run_import(env(workdir / "import.db"), workdir, str(path))

        posting, base = server(workdir / "post.db", workdir)
        try:
            posted = posting_rate(base, "/v1/events", batches_of(raw, "events"), total, 201)
            assert head(base) == total
        finally:
            posting.stop()
        messages = segment_messages(raw)
        segment, base = server(workdir / "segment.db", workdir)
        try:
            segment_rate = posting_rate(base, "/v1/batch", batches_of(messages, "batch"), total, 200)
            assert head(base) == total
        finally:
            segment.stop()
        importing, base = server(workdir / "http.db", workdir)
        try:
            over_http, http_wall, _ = run_import(
                env(workdir / "none.db", COHORTLINE_API_KEY="bench"), workdir, str(path), "--url", base
            )
            assert head(base) == total
        finally:
            importing.stop()

        print(
            f"{'reading and mapping the CSV alone':<44} {total / mapping_s:>9,.0f} events/s   ({mapping_s:.1f} s)"
        )
        print(f"{'record() loop in process (baseline)':<44} {baseline:>9,.0f} events/s")
        print(
            f"{'cohortline import online-retail':<44} {rate:>9,.0f} events/s   {rate / baseline:.2f} x baseline"
            f"   (wall {wall:.1f} s, of which projecting {projected or 0:.1f} s)"
        )
        print(f"{'POST /v1/events, requests loop (baseline)':<44} {posted:>9,.0f} events/s")
        print(
            f"{'cohortline import online-retail --url':<44} {over_http:>9,.0f} events/s   "
            f"{over_http / posted:.2f} x baseline   (wall {http_wall:.1f} s)"
        )
        print(
            f"{'POST /v1/batch, as Segment messages':<44} {segment_rate:>9,.0f} events/s   "
            f"{segment_rate / posted:.2f} x baseline   ({len(messages):,} messages)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
