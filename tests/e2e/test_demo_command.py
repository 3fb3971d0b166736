"""`cohortline demo` imports real data (a slice of UCI Online Retail here, passed with --data, to keep
the run short), prints what the read models found and exits; `--synthetic` does so on the made-up
shop history; with `--serve` either then keeps serving the dashboard on the demo's data, in open
mode on loopback, and says where."""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import requests

from bench.datasets import data_file
from tests.processes import Command, free_port, run_command, wait_until


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}


def online_retail_slice(path: Path, every: int) -> dict:
    """Every `every`-th customer's rows of Online Retail, gzipped to `path`; what they hold, counted
    straight from the rows: events, first-order cohort sizes by month, customers and repeat customers."""
    kept, invoices, amounts = [], {}, defaultdict(Decimal)
    with gzip.open(data_file("online_retail/online_retail.csv.gz"), "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if row["CustomerID"] and int(row["CustomerID"]) % every == 0:
                kept.append(row)
                if not row["InvoiceNo"][0].isalpha():
                    invoices.setdefault(row["InvoiceNo"], (row["CustomerID"], row["InvoiceDate"][:7]))
                    amounts[row["InvoiceNo"]] += Decimal(row["Quantity"]) * Decimal(row["UnitPrice"])
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    orders: dict[str, list[str]] = defaultdict(list)
    for customer, month in invoices.values():
        orders[customer].append(month)
    cohorts: dict[str, int] = defaultdict(int)
    for months in orders.values():
        cohorts[min(months)] += 1
    lines = sum(1 for r in kept if not r["InvoiceNo"][0].isalpha())
    months: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    for invoice, (_, month) in invoices.items():
        months[month][0] += 1
        months[month][1] += amounts[invoice].quantize(Decimal("0.01"))
    return {
        "months": {m: (n, f"{amount:,.2f}") for m, (n, amount) in months.items()},
        "events": lines + 3 * len(invoices),
        "cohorts": dict(cohorts),
        "customers": len(orders),
        "repeat": sum(1 for months in orders.values() if len(months) >= 2),
    }


def printed(output: str) -> dict:
    """The cohort sizes and repurchase the demo printed."""
    cohorts = {m[1]: int(m[2]) for m in re.finditer(r"^(\d{4}-\d{2}) +(\d+) +100%", output, re.MULTILINE)}
    repeat = re.search(r"^repurchase: ([\d,]+) of ([\d,]+) customers ordered again", output, re.MULTILINE)
    assert repeat, output
    return {
        "cohorts": cohorts,
        "customers": int(repeat[2].replace(",", "")),
        "repeat": int(repeat[1].replace(",", "")),
    }


def test_demo_imports_real_data_and_prints_what_the_read_models_found(tmp_path):
    want = online_retail_slice(tmp_path / "slice.csv.gz", every=20)
    assert len(want["cohorts"]) == 13 and want["customers"] > 200
    done = run_command(["demo", "--data", str(tmp_path / "slice.csv.gz")], demo_env(), tmp_path, 300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"imported {want['events']:,} events from slice.csv.gz" in done.stdout
    assert f"read models at position {want['events']}, watermark 2011-12-" in done.stdout
    assert printed(done.stdout) == {k: want[k] for k in ("cohorts", "customers", "repeat")}
    for section in (
        "RFM segments (recency and frequency scored by quintile",
        "per month: active customers, orders paid, net revenue (GBP)",
    ):
        assert section in done.stdout
    segments = re.findall(
        r"^  (Champions|Loyal|Potential Loyalist|New|Promising|Need Attention|About to Sleep|At Risk|Can't Lose Them|Lost) +([\d,]+)$",
        done.stdout,
        re.MULTILINE,
    )
    assert len(segments) == 10 and sum(int(n.replace(",", "")) for _, n in segments) == want["customers"]
    months = re.findall(r"^  (\d{4}-\d{2}) +[\d,]+ +([\d,]+) +([\d,.]+)", done.stdout, re.MULTILINE)
    assert {m: (int(n.replace(",", "")), net) for m, n, net in months} == want["months"]
    assert re.search(r"import online-retail: 100%.*events/s\]", done.stderr)
    assert re.search(r"project: 100%.*events/s\]", done.stderr)
    assert (tmp_path / "var" / "demo.db").exists()


def test_demo_on_real_data_keeps_serving_the_dashboard(tmp_path):
    want = online_retail_slice(tmp_path / "slice.csv.gz", every=50)
    port = free_port()
    args = ["demo", "--data", str(tmp_path / "slice.csv.gz"), "--serve", "--port", str(port)]
    demo = Command(args, demo_env(), tmp_path, "demo")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: f"Dashboard: {base}/" in demo.output(), 300, "the dashboard's URL", demo)
        status = wait_until(lambda: requests.get(f"{base}/v1/status", timeout=5).json(), 60, "the API", demo)
        assert status["head"] == want["events"]
        answer = requests.get(
            f"{base}/v1/orders/repurchase", params={"from": "2010-12-01", "to": "2011-12-09"}, timeout=5
        ).json()
        assert (answer["customers"], answer["repeat_customers"]) == (want["customers"], want["repeat"])
        assert printed(demo.log_path.read_text()) == {k: want[k] for k in ("cohorts", "customers", "repeat")}
    finally:
        assert demo.stop() == 0, demo.output()


def test_demo_says_when_its_data_is_missing(tmp_path):
    refused = run_command(["demo", "--data", str(tmp_path / "nothing.csv.gz")], demo_env(), tmp_path, 60)
    assert refused.returncode == 2 and "nothing.csv.gz is missing" in refused.stderr


def test_demo_synthetic_prints_its_summary_and_exits(tmp_path):
    done = run_command(["demo", "--synthetic"], demo_env(), tmp_path, 300)
    assert done.returncode == 0, done.stderr
    assert "read models at position 7509" in done.stdout
    assert "check-in within 7 days of first seen" in done.stdout
    assert "Dashboard:" not in done.stdout


def test_demo_synthetic_serve_keeps_serving_the_dashboard(tmp_path):
    port = free_port()
    demo = Command(["demo", "--synthetic", "--serve", "--port", str(port)], demo_env(), tmp_path, "demo")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: f"Dashboard: {base}/" in demo.output(), 300, "the dashboard's URL", demo)
        page = wait_until(lambda: requests.get(f"{base}/", timeout=5), 60, "the dashboard", demo)
        assert page.status_code == 200 and "<title>Overview · Cohortline</title>" in page.text
        assert requests.get(f"{base}/v1/status", timeout=5).json()["head"] == 7509
        assert "read models at position 7509" in demo.output()
    finally:
        assert demo.stop() == 0, demo.output()


def test_demo_serve_refuses_a_host_beyond_loopback(tmp_path):
    refused = run_command(["demo", "--serve", "--host", "0.0.0.0"], demo_env(), tmp_path, 60)
    assert refused.returncode == 2 and "loopback only" in refused.stderr
