"""UCI Online Retail (data/online_retail/README.md) as catalogue events.

Per customer invoice (cancellations `C…`, bad-debt adjustments `A…` and lines without a customer
left out): a session 10 minutes before the invoice time, a shopping-scene view of each line's product
5 minutes before, the order with its items (amount = the sum of quantity times unit price, GBP) at the invoice
time, and its payment a minute later. The invoice time is read as UTC. Event ids are uuid5 of a
fixed namespace and `{invoice}:{n}`, so a rerun sends the same ids (and the benchmarks, which use
this mapping, stay comparable)."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple

from infra.importers.source import BadLine, Batch, batched, open_text

NAMESPACE = uuid.UUID("2b0e4c52-9f0a-4d7c-8f67-54a0f4b7c1d3")
COUNTRY_CODES = {
    "United Kingdom": "GB",
    "Germany": "DE",
    "France": "FR",
    "EIRE": "IE",
    "Spain": "ES",
    "Netherlands": "NL",
    "Belgium": "BE",
    "Switzerland": "CH",
    "Portugal": "PT",
    "Australia": "AU",
    "Norway": "NO",
    "Italy": "IT",
    "Channel Islands": "JE",
    "Finland": "FI",
    "Cyprus": "CY",
    "Sweden": "SE",
    "Austria": "AT",
    "Denmark": "DK",
    "Japan": "JP",
    "Poland": "PL",
    "USA": "US",
    "Israel": "IL",
    "Singapore": "SG",
    "Iceland": "IS",
    "Canada": "CA",
    "Greece": "GR",
    "Malta": "MT",
    "United Arab Emirates": "AE",
    "Lithuania": "LT",
    "Czech Republic": "CZ",
    "Lebanon": "LB",
    "Brazil": "BR",
    "Bahrain": "BH",
    "Saudi Arabia": "SA",
    "RSA": "ZA",
}
"""The data set's country names as ISO 3166-1 codes; the others (`Unspecified`, `European
Community`) leave the context without a country."""
COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
_INTEGER = re.compile(r"-?\d+")


class Row(NamedTuple):
    """One kept invoice line and its line in the file."""

    line: int
    invoice: str
    stock_code: str
    quantity: str
    invoice_date: str
    unit_price: str
    customer: str
    country: str


def read_rows(path: Path) -> list[Row]:
    """The lines of customer invoices in file order, each checked; BadLine on the first that is not
    usable."""
    rows: list[Row] = []
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise BadLine(
                1, "header", f"missing column(s) {', '.join(missing)}; is this the Online Retail CSV?"
            )
        for record in reader:
            line = reader.line_num
            if not record["CustomerID"]:
                continue
            invoice = record["InvoiceNo"]
            if not invoice:
                raise BadLine(line, "InvoiceNo", "required")
            if invoice[0].isalpha():
                continue
            rows.append(Row(line, *(_checked(line, record, column) for column in COLUMNS)))
    return rows


def _checked(line: int, record: dict[str, Any], column: str) -> str:
    value = record[column]
    if value is None:
        raise BadLine(line, column, "missing (the line has fewer fields than the header)")
    if column == "Quantity" and not _INTEGER.fullmatch(value):
        raise BadLine(line, column, f"{value!r} is not an integer")
    if column == "UnitPrice":
        try:
            if not Decimal(value).is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise BadLine(line, column, f"{value!r} is not a decimal number") from None
    if column == "InvoiceDate":
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise BadLine(line, column, f"{value!r} is not a time such as 2010-12-01 08:26:00") from None
        if at.tzinfo is not None:
            raise BadLine(line, column, f"{value!r} has an offset; the data set's times have none")
    return value


def count_events(rows: list[Row]) -> int:
    """How many events `events(rows)` yields: per invoice a session, the views, the order, the payment."""
    invoices = sum(1 for i, row in enumerate(rows) if i == 0 or rows[i - 1].invoice != row.invoice)
    return len(rows) + 3 * invoices


def events(rows: list[Row]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each invoice's events in order, with the line each came from."""
    for invoice, group in groupby(rows, key=lambda r: r.invoice):
        yield from invoice_events(invoice, list(group))


def invoice_events(invoice: str, lines: list[Row]) -> Iterator[tuple[int, dict[str, Any]]]:
    first = lines[0]
    user, at = first.customer, first.invoice_date
    context = {"channel": "web"}
    if first.country in COUNTRY_CODES:
        context["country"] = COUNTRY_CODES[first.country]

    def fact(type_: str, when: str, data: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid5(NAMESPACE, f"{invoice}:{n}")),
            "type": type_,
            "user_id": user,
            "occurred_at": when,
            "data": data,
            "context": context,
        }

    yield first.line, fact("SessionStarted", _time(at, timedelta(minutes=-10)), {"platform": "web"}, 0)
    viewed = _time(at, timedelta(minutes=-5))
    for n, line in enumerate(lines, start=1):
        view = {"scene": "shopping", "page": line.stock_code[:128], "action": "view"}
        yield line.line, fact("SceneVisited", viewed, view, n)
    items = [
        {"sku": line.stock_code, "quantity": int(line.quantity), "unit_price": line.unit_price}
        for line in lines
    ]
    amount = sum((Decimal(line.quantity) * Decimal(line.unit_price) for line in lines), Decimal(0))
    amount_text = str(amount.quantize(Decimal("0.01")))
    order = {"order_id": invoice, "amount": amount_text, "currency": "GBP", "items": items}
    yield first.line, fact("OrderPlaced", _time(at), order, len(lines) + 1)
    paid = {"order_id": invoice, "amount": amount_text}
    yield first.line, fact("OrderPaid", _time(at, timedelta(minutes=1)), paid, len(lines) + 2)


def _time(text: str, shift: timedelta = timedelta()) -> str:
    return (datetime.fromisoformat(text) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")


class OnlineRetail:
    """The Online Retail CSV (optionally gzipped), read and counted when opened."""

    unit = "events"

    def __init__(self, path: Path):
        self.name = path.name
        self.rows = read_rows(path)
        self.total = count_events(self.rows)

    def batches(self, size: int) -> Iterator[Batch]:
        return batched(events(self.rows), size)
