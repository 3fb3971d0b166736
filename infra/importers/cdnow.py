"""The CDNOW master purchase file (../shared/data/cdnow/README.md) as catalogue events.

The file has no order id and no time of day: the rows of one customer on one day are one order
`{customer_id}-{date}`, placed at noon UTC of that day for the summed `dollar_value` (USD), and paid
a minute later for the same amount. Orders come in date order (ties in the order of their first
line). Event ids are uuid5 of a fixed namespace and `{order_id}:placed` / `:paid`, so a rerun sends
the same ids."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.importers.source import BadLine, Batch, batched, open_text

NAMESPACE = uuid.UUID("7c1f6a0e-3d2b-4e8f-9a51-6b0d2c8e4f17")
COLUMNS = ("customer_id", "date", "dollar_value")
_AMOUNT = re.compile(r"\d+(\.\d+)?")


@dataclass
class Order:
    """One customer's purchases on one day, and the line of the first of them."""

    line: int
    customer: str
    day: str
    amount: Decimal

    @property
    def order_id(self) -> str:
        return f"{self.customer}-{self.day}"


def read_orders(path: Path) -> list[Order]:
    """The file's rows summed per (customer, day), in date order; BadLine on the first unusable row."""
    orders: dict[tuple[str, str], Order] = {}
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise BadLine(1, "header", f"missing column(s) {', '.join(missing)}; is this the CDNOW CSV?")
        for record in reader:
            line = reader.line_num
            customer, day, value = (record[c] for c in COLUMNS)
            if not customer:
                raise BadLine(line, "customer_id", "required")
            if day is None or not _is_date(day):
                raise BadLine(line, "date", f"{day!r} is not a date such as 1997-01-01")
            if value is None or not _AMOUNT.fullmatch(value):
                raise BadLine(line, "dollar_value", f"{value!r} is not an amount such as 12.00")
            order = orders.get((customer, day))
            if order is None:
                orders[(customer, day)] = Order(line, customer, day, Decimal(value))
            else:
                order.amount += Decimal(value)
    return sorted(orders.values(), key=lambda o: (o.day, o.line))


def _is_date(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text) is not None
    except ValueError:
        return False


def events(orders: list[Order]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Per order its placement and payment, with the line each came from."""
    for order in orders:
        amount = str(order.amount)
        placed = {"order_id": order.order_id, "amount": amount, "currency": "USD"}
        yield order.line, _fact(order, "OrderPlaced", f"{order.day}T12:00:00Z", placed, "placed")
        paid = {"order_id": order.order_id, "amount": amount}
        yield order.line, _fact(order, "OrderPaid", f"{order.day}T12:01:00Z", paid, "paid")


def _fact(order: Order, type_: str, at: str, data: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{order.order_id}:{suffix}")),
        "type": type_,
        "user_id": order.customer,
        "occurred_at": at,
        "data": data,
        "context": {"channel": "web"},
    }


class Cdnow:
    """The CDNOW CSV (optionally gzipped), read and summed per order when opened."""

    unit = "events"

    def __init__(self, path: Path):
        self.name = path.name
        self.orders = read_orders(path)
        self.total = 2 * len(self.orders)

    def batches(self, size: int) -> Iterator[Batch]:
        return batched(events(self.orders), size)
