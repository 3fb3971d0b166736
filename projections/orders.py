"""Orders by placement time, and the repurchase answer read from them (metrics.md "Orders and
value")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Index, String, Table, and_, func, select

from projections.periods import day_bounds
from projections.records import EventRecord
from projections.schema import metadata, naive_utc
from projections.sql import key_chunks, upsert_rows

orders = Table(
    "rm_orders",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("placed_at", DateTime(), nullable=False),
    Column("currency", String(3)),
    Index("rm_orders_by_time", "placed_at", "user_id"),
)


def apply_orders(conn: Connection, events: Iterable[EventRecord]) -> None:
    rows = [
        {
            "order_id": e.data["order_id"],
            "user_id": e.user_id,
            "placed_at": naive_utc(e.occurred_at),
            "currency": e.data["currency"],
        }
        for e in events
        if e.type == "OrderPlaced"
    ]
    if rows:
        upsert_rows(conn, orders, rows, None)


def repurchase(conn: Connection, start: date, end: date) -> dict[str, Any]:
    """Customers with 2+ orders placed in the range over those with 1+, and the days between a
    customer's consecutive orders in the range."""
    c = orders.c
    first, after = day_bounds(start, end)
    in_range = and_(c.placed_at >= first, c.placed_at < after)
    previous = func.lag(c.placed_at, type_=DateTime()).over(
        partition_by=c.user_id, order_by=(c.placed_at, c.order_id)
    )
    ordered = select(c.user_id, c.placed_at, previous.label("previous")).where(in_range).subquery()
    per_customer: dict[str, int] = defaultdict(int)
    gaps: list[float] = []
    for user_id, placed_at, before in conn.execute(select(ordered)):
        per_customer[user_id] += 1
        if before is not None:
            gaps.append((placed_at - before).total_seconds() / 86400)
    customers = len(per_customer)
    repeat = sum(1 for n in per_customer.values() if n >= 2)
    gaps.sort()
    return {
        "customers": customers,
        "repeat_customers": repeat,
        "repurchase_rate": round(repeat / customers, 4) if customers else None,
        "median_days_between_orders": percentile(gaps, 0.5),
        "p90_days_between_orders": percentile(gaps, 0.9),
    }


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks; None when there are no values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return round(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low), 2)


def order_times(conn: Connection, user_ids: Iterable[str]) -> dict[str, list[datetime]]:
    """Each of these users' order placement times (UTC)."""
    found: dict[str, list[datetime]] = {}
    c = orders.c
    for chunk in key_chunks(user_ids):
        query = select(c.user_id, c.placed_at).where(c.user_id.in_(chunk))
        for user, at in conn.execute(query):
            found.setdefault(user, []).append(at.replace(tzinfo=UTC))
    return found
