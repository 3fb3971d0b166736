"""Real purchase histories from ../shared/data as catalogue events, for benchmarks."""

from __future__ import annotations

import csv
import gzip
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_file(relative: str) -> Path:
    """A file of the shared data sets: under COHORTLINE_DATA_DIR, or ../shared/data beside the checkout."""
    path = Path(os.environ.get("COHORTLINE_DATA_DIR", DEFAULT_DATA)) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the data sets live in ../shared/data beside the checkout, or set COHORTLINE_DATA_DIR"
        )
    return path


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


def _time(text: str, shift: timedelta = timedelta()) -> str:
    return (datetime.fromisoformat(text) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fact(
    invoice: str, user: str, context: dict[str, str], type_: str, at: str, data: dict[str, Any], n: int
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{invoice}:{n}")),
        "type": type_,
        "user_id": user,
        "occurred_at": at,
        "data": data,
        "context": context,
    }


def online_retail_events() -> Iterator[dict[str, Any]]:
    """Per customer invoice (cancellations and rows without a customer left out): a session, a
    shopping-scene view per line, the order with its items, and its payment. Event ids are derived
    from the data, so a rerun sends the same ids."""
    with gzip.open(data_file("online_retail/online_retail.csv.gz"), "rt", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["CustomerID"] and not r["InvoiceNo"][0].isalpha()]
    for invoice, lines_iter in groupby(rows, key=lambda r: r["InvoiceNo"]):
        lines = list(lines_iter)
        first = lines[0]
        user, at = first["CustomerID"], first["InvoiceDate"]
        context = {"channel": "web"}
        if first["Country"] in COUNTRY_CODES:
            context["country"] = COUNTRY_CODES[first["Country"]]
        yield _fact(
            invoice,
            user,
            context,
            "SessionStarted",
            _time(at, timedelta(minutes=-10)),
            {"platform": "web"},
            0,
        )
        for n, line in enumerate(lines, start=1):
            view = {"scene": "shopping", "page": line["StockCode"][:128], "action": "view"}
            yield _fact(invoice, user, context, "SceneVisited", _time(at, timedelta(minutes=-5)), view, n)
        items = [
            {"sku": line["StockCode"], "quantity": int(line["Quantity"]), "unit_price": line["UnitPrice"]}
            for line in lines
        ]
        amount = sum((Decimal(line["Quantity"]) * Decimal(line["UnitPrice"]) for line in lines), Decimal(0))
        amount_text = str(amount.quantize(Decimal("0.01")))
        order = {"order_id": invoice, "amount": amount_text, "currency": "GBP", "items": items}
        yield _fact(invoice, user, context, "OrderPlaced", _time(at), order, len(lines) + 1)
        paid = {"order_id": invoice, "amount": amount_text}
        yield _fact(
            invoice, user, context, "OrderPaid", _time(at, timedelta(minutes=1)), paid, len(lines) + 2
        )
