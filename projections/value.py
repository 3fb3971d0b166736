"""Money per currency (metrics.md "Conventions" and "Orders and value"): revenue cells and each
user's net revenue, never summing two currencies.

A payment or refund takes the currency of its order (`OrderPlaced.currency`). In the log it comes
after its order, but a projection must not depend on that (a dead-lettered order retried later, any
arrival order): one whose order is not known yet waits in `rm_pending_payments` and is counted when
the order arrives.

- `rm_revenue`: per granularity, period and currency, the amounts paid and refunded (1/10,000
  units) and the number of payments;
- `rm_user_revenue`: per user and currency, the net revenue (paid minus refunded);
- `rm_payments`: every payment (+) and refund (-) with its user, currency and event time, for the
  figures over a window after an instant (LTV, campaign and overview revenue);
- `rm_pending_payments`: payments and refunds whose order has not arrived.

All only add, so every figure is independent of arrival order and batching."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    func,
    select,
)

from projections.activity import users_per_period
from projections.money import rounded_money
from projections.orders import orders
from projections.periods import (
    GRANULARITIES,
    Granularity,
    day_bounds,
    end_of,
    label,
    period_of,
    period_start,
    periods_between,
    shift,
)
from projections.records import EventRecord
from projections.schema import aware_utc, metadata, naive_utc
from projections.sql import key_chunks, upsert_rows
from projections.users import event_money, users

PAYMENT_TYPES = ("OrderPaid", "OrderRefunded")

revenue_cells = Table(
    "rm_revenue",
    metadata,
    Column("granularity", String(8), primary_key=True),
    Column("period", Date(), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("paid", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("orders_paid", Integer, nullable=False),
)

user_revenue = Table(
    "rm_user_revenue",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("net", BigInteger, nullable=False),
)


payments = Table(
    "rm_payments",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(128), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("occurred_at", DateTime(), nullable=False),
    Index("ix_rm_payments_user", "user_id", "occurred_at"),
    Index("ix_rm_payments_time", "occurred_at"),
)

pending_payments = Table(
    "rm_pending_payments",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", String(128), nullable=False, index=True),
    Column("user_id", String(128), nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("occurred_at", DateTime(), nullable=False),
)


@dataclass(frozen=True)
class Payment:
    """An OrderPaid (`paid`) or OrderRefunded, its amount in 1/10,000 units."""

    position: int
    order_id: str
    user_id: str
    paid: bool
    amount: int
    occurred_at: datetime


def apply_value(conn: Connection, events: Sequence[EventRecord]) -> None:
    """Add the batch's payments and refunds, and those that waited for an order of the batch, to
    the revenue cells and to their users' net revenue."""
    moved = [_payment(e) for e in events if e.type in PAYMENT_TYPES]
    placed = {e.data["order_id"]: e.data["currency"] for e in events if e.type == "OrderPlaced"}
    moved += _released(conn, placed)
    if not moved:
        return
    currencies = order_currencies(conn, placed, {p.order_id for p in moved})
    waiting = [p for p in moved if p.order_id not in currencies]
    if waiting:
        upsert_rows(
            conn,
            pending_payments,
            [vars(p) | {"occurred_at": naive_utc(p.occurred_at)} for p in waiting],
            None,
        )
    cells: dict[tuple[str, date, str], Counter[str]] = {}
    nets: Counter[tuple[str, str]] = Counter()
    counted = []
    for payment in moved:
        currency = currencies.get(payment.order_id)
        if currency is None:
            continue
        counted.append(
            {
                "position": payment.position,
                "user_id": payment.user_id,
                "currency": currency,
                "amount": payment.amount if payment.paid else -payment.amount,
                "occurred_at": naive_utc(payment.occurred_at),
            }
        )
        for granularity in GRANULARITIES:
            key = (granularity, period_of(granularity, payment.occurred_at), currency)
            cell = cells.setdefault(key, Counter())
            cell["paid" if payment.paid else "refunded"] += payment.amount
            cell["orders_paid"] += int(payment.paid)
        nets[(payment.user_id, currency)] += payment.amount if payment.paid else -payment.amount
    cell_rows = [
        {
            "granularity": g,
            "period": p,
            "currency": c,
            **{k: n[k] for k in ("paid", "refunded", "orders_paid")},
        }
        for (g, p, c), n in sorted(cells.items())
    ]
    upsert_rows(conn, payments, counted, None)
    upsert_rows(conn, revenue_cells, cell_rows, ("paid", "refunded", "orders_paid"))
    upsert_rows(
        conn,
        user_revenue,
        [{"user_id": u, "currency": c, "net": net} for (u, c), net in sorted(nets.items())],
        ("net",),
    )


def _payment(event: EventRecord) -> Payment:
    assert event.user_id is not None
    return Payment(
        event.position,
        event.data["order_id"],
        event.user_id,
        event.type == "OrderPaid",
        event_money(event),
        event.occurred_at,
    )


def _released(conn: Connection, placed: Mapping[str, str]) -> list[Payment]:
    """The payments that waited for an order placed in this batch, taken out of waiting."""
    if not placed:
        return []
    c = pending_payments.c
    released: list[Payment] = []
    ids = sorted(placed)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = conn.execute(select(pending_payments).where(c.order_id.in_(chunk))).mappings().all()
        released += [Payment(**{**row, "occurred_at": aware_utc(row["occurred_at"])}) for row in rows]
        if rows:
            conn.execute(pending_payments.delete().where(c.order_id.in_(chunk)))
    return released


def order_currencies(conn: Connection, placed: Mapping[str, str], order_ids: set[str]) -> dict[str, str]:
    """The currency of each of these orders that is known: placed in this batch, or earlier."""
    found = {order_id: currency for order_id, currency in placed.items() if order_id in order_ids}
    missing = sorted(order_ids - found.keys())
    c = orders.c
    for start in range(0, len(missing), 1000):
        query = select(c.order_id, c.currency).where(
            c.order_id.in_(missing[start : start + 1000]), c.currency.isnot(None)
        )
        found.update(dict(conn.execute(query).all()))
    return found


def revenue(conn: Connection, granularity: Granularity, start: date, end: date) -> list[dict[str, Any]]:
    """Per period of the range (zeros included): per currency paid, refunded, net, payments and ARPU
    (net over the period's active users), and the active users."""
    c = revenue_cells.c
    first = period_start(granularity, start)
    query = (
        select(c.period, c.currency, c.paid, c.refunded, c.orders_paid)
        .where(c.granularity == granularity, c.period.between(first, end))
        .order_by(c.period, c.currency)
    )
    by_period: dict[date, dict[str, Any]] = {}
    for period, currency, paid, refunded, orders_paid in conn.execute(query):
        by_period.setdefault(period, {})[currency] = (paid, refunded, orders_paid)
    active = users_per_period(conn, "active", granularity, start, end)
    series = []
    for period in periods_between(granularity, start, end):
        users = active.get(period, 0)
        currencies = {
            currency: _revenue_figures(paid, refunded, orders_paid, users)
            for currency, (paid, refunded, orders_paid) in by_period.get(period, {}).items()
        }
        series.append({"period": label(granularity, period), "currencies": currencies, "active_users": users})
    return series


def _revenue_figures(paid: int, refunded: int, orders_paid: int, active_users: int) -> dict[str, Any]:
    return {
        "paid": rounded_money(paid),
        "refunded": rounded_money(refunded),
        "net": rounded_money(paid - refunded),
        "orders_paid": orders_paid,
        "arpu": rounded_money(paid - refunded, active_users) if active_users else None,
    }


COHORT_INSTANTS = {"first_seen": "first_seen_at", "signup": "signup_at", "first_order": "first_order_at"}
"""The user-row column that puts a user in a cohort (metrics.md "Retention")."""


def ltv(
    conn: Connection,
    granularity: Granularity,
    definition: str,
    start: date,
    end: date,
    periods: int | None,
    watermark: datetime | None,
) -> list[dict[str, Any]]:
    """Per cohort whose period lies in [start, end]: at offsets 0..periods (cells after `end` left
    out), the net revenue of its members in periods C .. C+k over its size, per currency, a currency
    listed (with "0.00" before its first amount) when a member has money in one of the cells."""
    instant = users.c[COHORT_INSTANTS[definition]]
    first = day_bounds(period_start(granularity, start), end)[0]
    after = naive_utc(end_of(granularity, period_start(granularity, end)))
    query = select(users.c.user_id, instant).where(instant >= first, instant < after)
    cohort_of = {user: period_of(granularity, aware_utc(at)) for user, at in conn.execute(query)}
    members: dict[date, int] = Counter(cohort_of.values())
    offsets = {cohort: _offsets(granularity, cohort, end, periods) for cohort in members}
    spent: dict[date, dict[str, Counter[date]]] = {}
    c = payments.c
    spending = (
        select(c.user_id, c.currency, c.amount, c.occurred_at)
        .join_from(payments, users, users.c.user_id == c.user_id)
        .where(instant >= first, instant < after, c.occurred_at >= first)
    )
    for user, currency, amount, at in conn.execute(spending):
        cohort, period = cohort_of[user], period_of(granularity, aware_utc(at))
        if cohort <= period <= offsets[cohort][-1]:
            spent.setdefault(cohort, {}).setdefault(currency, Counter())[period] += amount
    rows = []
    for cohort in sorted(members):
        size = members[cohort]
        currencies = {}
        for currency, by_period in sorted(spent.get(cohort, {}).items()):
            running, cumulative = 0, []
            for period in offsets[cohort]:
                running += by_period.get(period, 0)
                cumulative.append(rounded_money(running, size))
            currencies[currency] = cumulative
        rows.append(
            {
                "cohort": label(granularity, cohort),
                "size": size,
                "currencies": currencies,
                "complete": [
                    watermark is not None and end_of(granularity, p) <= watermark for p in offsets[cohort]
                ],
            }
        )
    return rows


def _offsets(granularity: Granularity, cohort: date, end: date, periods: int | None) -> list[date]:
    """The periods C, C+1, .. C+periods that start by `end` (all of them when `periods` is None)."""
    found = [cohort]
    while periods is None or len(found) <= periods:
        following = shift(granularity, found[-1], 1)
        if following > end:
            break
        found.append(following)
    return found


def window_revenue(
    conn: Connection, windows: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, Counter[str]]:
    """user → per currency the net revenue (1/10,000 units) whose event time lies in the user's
    window [from, until) (metrics.md "Net revenue"); a currency with amounts that net to 0 is kept."""
    found: dict[str, Counter[str]] = {}
    for user, currency, amount, at in _payments_of(conn, windows):
        lo, hi = windows[user]
        if lo <= aware_utc(at) < hi:
            found.setdefault(user, Counter())[currency] += amount
    return found


def range_revenue(conn: Connection, start: date, end: date) -> dict[str, int]:
    """Per currency, the net revenue (1/10,000 units) whose event time lies in [start, end]."""
    c = payments.c
    first, after = day_bounds(start, end)
    query = (
        select(c.currency, func.sum(c.amount))
        .where(c.occurred_at >= first, c.occurred_at < after)
        .group_by(c.currency)
    )
    return {currency: int(total) for currency, total in conn.execute(query)}


def _payments_of(conn: Connection, user_ids: Iterable[str]) -> Iterator[tuple[str, str, int, datetime]]:
    """(user, currency, signed amount, event time) of every payment and refund of these users."""
    c = payments.c
    for chunk in key_chunks(user_ids):
        query = select(c.user_id, c.currency, c.amount, c.occurred_at).where(c.user_id.in_(chunk))
        yield from conn.execute(query).tuples()
