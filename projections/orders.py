"""Orders by placement time, for repurchase and time between orders (metrics.md "Orders and value")."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, Connection, DateTime, Index, String, Table

from projections.records import EventRecord
from projections.schema import metadata, naive_utc
from projections.sql import upsert_rows

orders = Table(
    "rm_orders",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("placed_at", DateTime(), nullable=False),
    Index("rm_orders_by_time", "placed_at", "user_id"),
)


def apply_orders(conn: Connection, events: Iterable[EventRecord]) -> None:
    rows = [
        {"order_id": e.data["order_id"], "user_id": e.user_id, "placed_at": naive_utc(e.occurred_at)}
        for e in events
        if e.type == "OrderPlaced"
    ]
    if rows:
        upsert_rows(conn, orders, rows, None)
