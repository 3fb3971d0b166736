"""Retention and repurchase of the real purchase histories in ../shared/data, through Cohortline on the
embedded default, compared with numbers computed straight from the CSV files."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest

from bench.datasets import data_file
from domain.envelope import parse_envelope
from infra.bootstrap import build_system
from infra.config import load_settings
from projections.orders import repurchase
from projections.retention import retention
from projections.tracking import progress
from streams.local import LocalFollower
from streams.log_reader import LogReader


def months_between(a: str, b: str) -> int:
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7])


def expected_monthly_retention(purchases: dict[str, set[str]]) -> dict[str, list[int]]:
    """Per first-purchase month: cohort size, then customers purchasing again k months later."""
    cohorts: dict[str, list[set[str]]] = defaultdict(lambda: [set() for _ in range(24)])
    for customer, months in purchases.items():
        first = min(months)
        for month in months:
            cohorts[first][months_between(first, month)].add(customer)
    return {c: [len(s) for s in offsets] for c, offsets in cohorts.items()}


def record(tmp_path, orders: list[dict]) -> object:
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'data.db'}"}))
    for start in range(0, len(orders), 2000):
        system.event_store.record([parse_envelope(o) for o in orders[start : start + 2000]])
    LocalFollower(LogReader(system.event_store), system.runners, batch_size=5000).catch_up()
    return system


def check(system, expected: dict[str, list[int]], start: date, end: date, periods: int) -> None:
    with system.engine.connect() as conn:
        watermark = progress(conn, "analytics", None).watermark
        rows = retention(conn, "month", "first_order", "order", "on", start, end, periods, watermark)
    assert {r["cohort"] for r in rows} == set(expected)
    for row in rows:
        assert row["values"] == expected[row["cohort"]][: len(row["values"])], row["cohort"]


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    purchases: dict[str, set[str]] = defaultdict(set)
    spend: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with gzip.open(data_file("cdnow/cdnow_master.csv.gz"), "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            purchases[row["customer_id"]].add(row["date"][:7])
            spend[(row["customer_id"], row["date"])] += Decimal(row["dollar_value"])
    orders = [
        {
            "type": "OrderPlaced",
            "user_id": customer,
            "occurred_at": f"{day}T12:00:00Z",
            "data": {"order_id": f"{customer}-{day}", "amount": str(amount), "currency": "USD"},
        }
        for (customer, day), amount in sorted(spend.items(), key=lambda kv: kv[0][1])
    ]
    system = record(tmp_path_factory.mktemp("cdnow"), orders)
    yield system, purchases, spend
    system.close()


def test_cdnow_monthly_retention(cdnow):
    system, purchases, _ = cdnow
    expected = expected_monthly_retention(purchases)
    assert {c: v[0] for c, v in expected.items()} == {"1997-01": 7846, "1997-02": 8476, "1997-03": 7248}
    check(system, expected, date(1997, 1, 1), date(1998, 6, 30), 17)


def test_cdnow_repurchase(cdnow):
    system, _, spend = cdnow
    orders_per_customer: dict[str, int] = defaultdict(int)
    for customer, _ in spend:
        orders_per_customer[customer] += 1
    with system.engine.connect() as conn:
        answer = repurchase(conn, date(1997, 1, 1), date(1998, 6, 30))
    assert answer["customers"] == 23570 == len(orders_per_customer)
    assert answer["repeat_customers"] == sum(1 for n in orders_per_customer.values() if n >= 2)


def test_online_retail_monthly_retention(tmp_path):
    purchases: dict[str, set[str]] = defaultdict(set)
    invoices: dict[str, dict] = {}
    with gzip.open(data_file("online_retail/online_retail.csv.gz"), "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["CustomerID"] or row["InvoiceNo"][0].isalpha():
                continue
            purchases[row["CustomerID"]].add(row["InvoiceDate"][:7])
            invoice = invoices.setdefault(
                row["InvoiceNo"], {"user": row["CustomerID"], "at": row["InvoiceDate"], "amount": Decimal(0)}
            )
            invoice["amount"] += Decimal(row["Quantity"]) * Decimal(row["UnitPrice"])
    orders = [
        {
            "type": "OrderPlaced",
            "user_id": i["user"],
            "occurred_at": i["at"].replace(" ", "T") + "Z",
            "data": {"order_id": number, "amount": str(i["amount"]), "currency": "GBP"},
        }
        for number, i in invoices.items()
    ]
    system = record(tmp_path, orders)
    try:
        expected = expected_monthly_retention(purchases)
        assert expected["2010-12"][0] == 885  # the cohort api.md shows
        check(system, expected, date(2010, 12, 1), date(2011, 12, 9), 12)
    finally:
        system.close()
