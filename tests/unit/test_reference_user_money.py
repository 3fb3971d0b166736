"""The reference's user state money and RFM monetary (metrics.md "Conventions", "User state", "RFM")
over small histories worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests import reference
from tests.reference import Event

WATERMARK = datetime(2011, 4, 1, tzinfo=UTC)


def history(*rows: tuple[Any, ...]) -> list[Event]:
    """(type, user, occurred_at, data?) rows as events at positions 1..n, amounts as Decimals."""
    events = []
    for position, (type_, user, at, *rest) in enumerate(rows, start=1):
        data = {k: Decimal(v) if k == "amount" else v for k, v in (rest[0] if rest else {}).items()}
        events.append(Event(position, type_, user, datetime.fromisoformat(at), data))
    return events


def placed(order_id: str, amount: str, currency: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "currency": currency}


def paid(order_id: str, amount: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount}


REVENUE = history(
    ("UserRegistered", "u1", "2011-01-03T09:00:00Z"),
    ("OrderPlaced", "u1", "2011-01-05T10:00:00Z", placed("o1", "100.00", "GBP")),
    ("OrderPaid", "u1", "2011-01-05T10:05:00Z", paid("o1", "100.00")),
    ("OrderPlaced", "u3", "2011-01-20T08:00:00Z", placed("o3", "15.00", "GBP")),
    ("OrderPaid", "u3", "2011-01-20T08:01:00Z", paid("o3", "15.00")),
    ("OrderCancelled", "u3", "2011-01-21T08:00:00Z", {"order_id": "o3"}),
    ("OrderPlaced", "u2", "2011-01-31T22:00:00-01:00", placed("o2", "20.125", "EUR")),
    ("OrderPaid", "u2", "2011-01-31T23:30:00-01:00", paid("o2", "20.125")),
    ("OrderRefunded", "u1", "2011-02-02T12:00:00Z", paid("o1", "30.00")),
    ("OrderPlaced", "u2", "2011-02-03T10:00:00Z", placed("o4", "7.50", "GBP")),
    ("OrderPaid", "u2", "2011-02-03T10:01:00Z", paid("o4", "7.50")),
    ("OrderRefunded", "u2", "2011-02-10T10:00:00Z", paid("o2", "20.125")),
    ("OrderRefunded", "u1", "2011-03-15T10:00:00Z", paid("o1", "10.00")),
)


def test_net_revenue_is_per_currency_of_the_order_and_rounded_half_even() -> None:
    more = history(
        ("SessionStarted", "u4", "2011-01-01T00:00:00Z"),
        ("OrderPlaced", "u5", "2011-01-02T00:00:00Z", placed("o5", "2.675", "CNY")),
        ("OrderPaid", "u5", "2011-01-02T00:01:00Z", paid("o5", "2.675")),
    )
    states = reference.user_states(REVENUE + [replace(e, position=100 + e.position) for e in more])
    assert states["u1"]["net_revenue"] == {"GBP": "60.00"}  # 100 - 30 - 10
    assert states["u2"]["net_revenue"] == {"EUR": "0.00", "GBP": "7.50"}  # EUR refunded in full: listed
    assert states["u3"]["net_revenue"] == {"GBP": "15.00"}  # a cancellation does not refund
    assert states["u4"]["net_revenue"] == {}  # no payment or refund
    assert states["u5"]["net_revenue"] == {"CNY": "2.68"}  # 2.675, half to even


def test_monetary_ranks_in_the_currency_of_most_orders() -> None:
    # orders: u1 o1 GBP, u3 o3 GBP, u2 o2 EUR and o4 GBP: GBP has 3 of 4
    assert reference.reporting_currency(REVENUE) == "GBP"
    found = reference.rfm(REVENUE, WATERMARK)
    monetary = {u: (r["monetary"], r["currency"], r["m"]) for u, r in found.items()}
    # GBP net: u1 60, u2 7.50 (its EUR is not converted, nor added), u3 15; m = 1 + 5w/3
    assert monetary == {"u1": ("60.00", "GBP", 4), "u2": ("7.50", "GBP", 1), "u3": ("15.00", "GBP", 2)}


def test_a_configured_reporting_currency_counts_0_for_customers_without_it() -> None:
    found = reference.rfm(REVENUE, WATERMARK, "EUR")
    monetary = {u: (r["monetary"], r["currency"], r["m"]) for u, r in found.items()}
    assert monetary == {"u1": ("0.00", "EUR", 1), "u2": ("0.00", "EUR", 1), "u3": ("0.00", "EUR", 1)}
    assert {r["segment"] for r in found.values()} == {
        r["segment"] for r in reference.rfm(REVENUE, WATERMARK).values()
    }


def test_tied_currencies_go_to_the_first_code() -> None:
    tied = history(
        ("OrderPlaced", "u1", "2011-01-02T00:00:00Z", placed("o1", "5", "GBP")),
        ("OrderPlaced", "u2", "2011-01-03T00:00:00Z", placed("o2", "5", "EUR")),
        ("OrderPaid", "u2", "2011-01-03T00:01:00Z", paid("o2", "5")),
    )
    assert reference.reporting_currency(tied) == "EUR"
    assert reference.rfm(tied, WATERMARK)["u2"]["monetary"] == "5.00"
    assert reference.reporting_currency(history(("SessionStarted", "u1", "2011-01-02T00:00:00Z"))) is None
    assert reference.rfm(history(("SessionStarted", "u1", "2011-01-02T00:00:00Z")), WATERMARK) == {}
