"""The user search on its three backends at once, loaded with the same user rows: SQL on SQLite, SQL
on PostgreSQL and the real Elasticsearch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from sqlalchemy import Engine, delete, insert

from infra import migrations
from infra.database import create_database_engine
from projections.rules import millis
from projections.schema import naive_utc
from projections.search import ElasticsearchUsers, SqlUsers, UserPage, UserQuery
from projections.users import users
from projections.value import user_revenue
from tests import services

BACKENDS = ("sqlite", "postgresql", "elasticsearch")


@dataclass
class Backends:
    sql: dict[str, Engine]
    index: ElasticsearchUsers

    @property
    def searches(self) -> dict[str, SqlUsers | ElasticsearchUsers]:
        return {**{name: SqlUsers(engine) for name, engine in self.sql.items()}, "elasticsearch": self.index}

    def load(self, rows: list[dict[str, Any]]) -> None:
        """Replace every user with `rows` (with their net revenue per currency), in the three
        backends."""
        columns = [{k: v for k, v in row.items() if k != "net_revenue"} for row in rows]
        revenue = [
            {"user_id": row["user_id"], "currency": currency, "net": net}
            for row in rows
            for currency, net in row["net_revenue"].items()
        ]
        for engine in self.sql.values():
            with engine.begin() as conn:
                conn.execute(delete(users))
                conn.execute(delete(user_revenue))
                conn.execute(insert(users), columns)
                if revenue:
                    conn.execute(insert(user_revenue), revenue)
        es = self.index.client
        es.options(ignore_status=404).indices.delete(index=self.index.index)
        self.index.ensure_index()
        self.index.index_rows(rows)
        es.indices.refresh(index=self.index.index)


@contextmanager
def open_backends(tmp_path: Path, pg_url: str, elasticsearch_url: str) -> Iterator[Backends]:
    sqlite = create_database_engine(f"sqlite:///{tmp_path / 'search.db'}")
    migrations.upgrade(sqlite)
    postgresql = create_database_engine(pg_url)
    name = services.unique_name("cohortline-test-search")
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    index = ElasticsearchUsers(client, name)
    index.ensure_index()
    try:
        yield Backends({"sqlite": sqlite, "postgresql": postgresql}, index)
    finally:
        client.options(ignore_status=404).indices.delete(index=name)
        client.close()
        sqlite.dispose()
        postgresql.dispose()


def user_row(
    user_id: str,
    first_seen_at: datetime,
    *,
    last_active_at: datetime | None = None,
    last_order_at: datetime | None = None,
    orders: int = 0,
    resurrected_on: date | None = None,
    country: str | None = None,
) -> dict[str, Any]:
    """A row of rm_users (times naive UTC) with what the search reads, the rest zero or empty, and
    its net revenue (in GBP, a unit per order) as attach_net_revenue gives it."""
    empty = dict.fromkeys(
        ("signup_at", "first_order_at", "country_key", "channel", "channel_key", "first_country"),
    )
    empty.update(dict.fromkeys(("first_country_key", "tier", "tier_key")))
    return {
        **empty,
        "user_id": user_id,
        "first_seen_at": naive_utc(first_seen_at),
        "last_active_at": naive_utc(last_active_at),
        "last_order_at": naive_utc(last_order_at),
        "orders": orders,
        "net_revenue": {"GBP": 10_000 * orders} if orders else {},
        "points": 0,
        "open_tickets": 0,
        "country": country,
        "resurrected_on": resurrected_on,
        "last_position": 1,
    }


def every_page(search: Any, query: UserQuery) -> list[str]:
    """The user ids of every page of the query, in order; fails on a page beyond the users."""
    found: list[str] = []
    after: str | None = None
    for _ in range(10_000):
        page: UserPage = search.search(replace(query, after=after))
        found += [u["user_id"] for u in page.users]
        if page.next is None:
            return found
        after = page.next
    raise AssertionError("paging never ends")


def sort_key(row: dict[str, Any]) -> tuple[bool, int, str]:
    """Newest activity first to the millisecond, never active last, then user id by code point."""
    at = row["last_active_at"]
    return (at is None, -millis(at) if at is not None else 0, row["user_id"])


def in_order(rows: Iterable[dict[str, Any]]) -> list[str]:
    return [r["user_id"] for r in sorted(rows, key=sort_key)]
