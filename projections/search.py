"""User search: documents in Elasticsearch kept equal to the user rows, and the same query over
SQL for the embedded default.

Each document's external version is the last log position applied to its user, so a stale or
repeated write is refused by Elasticsearch and the index converges to the read model."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, false, func, or_, select

from projections.failures import DocumentRejected, TransientError
from projections.lifecycle import Thresholds
from projections.presenters import present_user
from projections.rfm import Box
from projections.schema import naive_utc
from projections.users import users

MAX_PAGE = 100
INDEX_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "user_id": {"type": "keyword"},
        "first_seen_at": {"type": "date"},
        "signup_at": {"type": "date"},
        "first_order_at": {"type": "date"},
        "last_active_at": {"type": "date"},
        "last_order_at": {"type": "date"},
        "orders": {"type": "integer"},
        "net_revenue": {"type": "keyword", "index": False},
        "points": {"type": "long"},
        "open_tickets": {"type": "integer"},
        "country": {"type": "keyword"},
        "channel": {"type": "keyword"},
        "tier": {"type": "keyword"},
        "resurrected_on": {"type": "date"},
        "last_position": {"type": "long"},
    },
}


@dataclass(frozen=True)
class UserQuery:
    q: str | None = None
    country: str | None = None
    min_orders: int | None = None
    last_active_before: datetime | None = None
    lifecycle: str | None = None
    segment: list[Box] | None = None
    """The ranges that hold one RFM segment's customers (projections.rfm.segment_boxes)."""
    watermark: datetime | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    size: int = 20
    after: str | None = None


@dataclass(frozen=True)
class LifecycleBounds:
    """A lifecycle state at a watermark as bounds on stored times (see projections.lifecycle)."""

    new_since: datetime
    active_since: datetime
    churned_before: datetime
    resurrected_since: date

    @classmethod
    def at(cls, watermark: datetime, thresholds: Thresholds) -> LifecycleBounds:
        return cls(
            watermark - timedelta(days=thresholds.new_days),
            watermark - timedelta(days=thresholds.active_days),
            watermark - timedelta(days=thresholds.churn_days),
            watermark.date() - timedelta(days=thresholds.active_days),
        )


@dataclass(frozen=True)
class UserPage:
    users: list[dict[str, Any]]
    next: str | None


class ElasticsearchUsers:
    """The user index in Elasticsearch: written by the projection, read by the API."""

    def __init__(self, client: Any, index: str):
        self.client = client
        self.index = index

    def ensure_index(self) -> None:
        """Create the index unless it exists; another process creating it meanwhile is fine."""
        from elasticsearch import BadRequestError

        if self.client.indices.exists(index=self.index):
            return
        try:
            self.client.indices.create(
                index=self.index,
                mappings=INDEX_MAPPING,
                settings={"number_of_shards": 1, "number_of_replicas": 0},
            )
        except BadRequestError as e:
            if e.error != "resource_already_exists_exception":
                raise

    def index_rows(self, rows: Iterable[Mapping[str, Any]], version_type: str = "external") -> None:
        operations: list[dict[str, Any]] = []
        for row in rows:
            doc = present_user(row)
            operations.append(
                {
                    "index": {
                        "_index": self.index,
                        "_id": row["user_id"],
                        "version": row["last_position"],
                        "version_type": version_type,
                    }
                }
            )
            operations.append(doc)
        if not operations:
            return
        try:
            response = self.client.bulk(operations=operations, refresh=False)
        except Exception as e:
            if _refused_request(e):
                raise
            raise TransientError(f"elasticsearch bulk failed: {e}") from e
        if response.get("errors"):
            _raise_for_items(response["items"])

    def reindex(self, conn: Connection) -> None:
        """Every user row again, replacing documents of the same version (after a rebuild, a row
        can differ from the document indexed at its position)."""
        c = users.c
        after = ""
        while True:
            rows = (
                conn.execute(select(users).where(c.user_id > after).order_by(c.user_id).limit(1000))
                .mappings()
                .all()
            )
            if not rows:
                return
            self.index_rows(rows, version_type="external_gte")
            after = rows[-1]["user_id"]

    def get(self, user_id: str) -> dict[str, Any] | None:
        response = self.client.options(ignore_status=404).get(index=self.index, id=user_id)
        return response["_source"] if response.get("found") else None

    def search(self, query: UserQuery) -> UserPage:
        filters: list[dict[str, Any]] = []
        if query.q:
            filters.append({"prefix": {"user_id": query.q}})
        if query.country:
            filters.append({"term": {"country": query.country}})
        if query.min_orders is not None:
            filters.append({"range": {"orders": {"gte": query.min_orders}}})
        if query.last_active_before is not None:
            filters.append({"range": {"last_active_at": {"lt": query.last_active_before.isoformat()}}})
        if query.lifecycle is not None and query.watermark is not None:
            filters.append(
                _es_lifecycle(query.lifecycle, LifecycleBounds.at(query.watermark, query.thresholds))
            )
        if query.segment is not None:
            filters.append(_es_segment(query.segment))
        size = min(query.size, MAX_PAGE)
        body: dict[str, Any] = {
            "query": {"bool": {"filter": filters}},
            "sort": [
                {"last_active_at": {"order": "desc", "missing": "_last"}},
                {"user_id": {"order": "asc"}},
            ],
            "size": size + 1,
        }
        if query.after:
            body["search_after"] = decode_cursor(query.after)
        hits = self.client.search(index=self.index, **body)["hits"]["hits"]
        page = hits[:size]
        cursor = encode_cursor(page[-1]["sort"]) if len(hits) > size else None
        return UserPage([h["_source"] for h in page], cursor)


def _refused_request(error: Exception) -> bool:
    """Elasticsearch answered the whole request with a 4xx other than 429: the request is wrong, and
    sending it again cannot help."""
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status != 429


def _raise_for_items(items: list[dict[str, Any]]) -> None:
    """TransientError when Elasticsearch was busy or failing (429, 5xx) for a document;
    DocumentRejected when it refused one for what it holds (e.g. a mapping error). A version
    conflict means the index holds the same or a newer document already: fine."""
    failed = [
        item["index"]
        for item in items
        if item["index"].get("status", 200) >= 300 and item["index"].get("status") != 409
    ]
    busy = [f for f in failed if f.get("status") == 429 or f.get("status", 500) >= 500]
    if busy:
        raise TransientError(f"elasticsearch could not index {len(busy)} document(s): {busy[0]}")
    if failed:
        first, error = failed[0], failed[0].get("error") or {}
        raise DocumentRejected(
            f"elasticsearch rejected the document of user {first.get('_id')!r} ({first.get('status')}): "
            f"{error.get('type')}: {error.get('reason')}"
        )


class SqlUsers:
    """The same search over the SQL read model (the embedded default)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def search(self, query: UserQuery) -> UserPage:
        c = users.c
        stmt = select(users)
        if query.q:
            escaped = query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(c.user_id.like(f"{escaped}%", escape="\\"))
        if query.country:
            stmt = stmt.where(c.country == query.country)
        if query.min_orders is not None:
            stmt = stmt.where(c.orders >= query.min_orders)
        if query.last_active_before is not None:
            stmt = stmt.where(c.last_active_at < naive_utc(query.last_active_before))
        if query.lifecycle is not None and query.watermark is not None:
            stmt = stmt.where(
                _sql_lifecycle(query.lifecycle, LifecycleBounds.at(query.watermark, query.thresholds))
            )
        if query.segment is not None:
            stmt = stmt.where(_sql_segment(query.segment))
        if query.after:
            stmt = stmt.where(_after(decode_cursor(query.after)))
        size = min(query.size, MAX_PAGE)
        stmt = stmt.order_by(c.last_active_at.is_(None), c.last_active_at.desc(), c.user_id).limit(size + 1)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        page = rows[:size]
        cursor = None
        if len(rows) > size:
            last = page[-1]
            at = last["last_active_at"]
            cursor = encode_cursor([at.isoformat() if at else None, last["user_id"]])
        return UserPage([present_user(r) for r in page], cursor)


def _sql_lifecycle(state: str, b: LifecycleBounds) -> Any:
    c = users.c
    anchor = func.coalesce(c.last_active_at, c.first_seen_at)
    new_since, active_since, churned_before = (
        naive_utc(t) for t in (b.new_since, b.active_since, b.churned_before)
    )
    if state == "new":
        return c.first_seen_at >= new_since
    settled = c.first_seen_at < new_since
    back = and_(c.resurrected_on.isnot(None), c.resurrected_on >= b.resurrected_since)
    return {
        "resurrected": and_(settled, anchor >= active_since, back),
        "active": and_(settled, anchor >= active_since, ~back),
        "at_risk": and_(settled, anchor < active_since, anchor >= churned_before),
        "churned": and_(settled, anchor < churned_before),
    }[state]


def _es_lifecycle(state: str, b: LifecycleBounds) -> dict[str, Any]:
    def anchor(bounds: dict[str, str]) -> dict[str, Any]:
        return {
            "bool": {
                "should": [
                    {"range": {"last_active_at": bounds}},
                    {
                        "bool": {
                            "must_not": {"exists": {"field": "last_active_at"}},
                            "filter": {"range": {"first_seen_at": bounds}},
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }

    new_since, active_since, churned_before = (
        t.isoformat() for t in (b.new_since, b.active_since, b.churned_before)
    )
    if state == "new":
        return {"range": {"first_seen_at": {"gte": new_since}}}
    settled = {"range": {"first_seen_at": {"lt": new_since}}}
    back = {"range": {"resurrected_on": {"gte": b.resurrected_since.isoformat()}}}
    clauses = {
        "resurrected": {"filter": [settled, anchor({"gte": active_since}), back]},
        "active": {"filter": [settled, anchor({"gte": active_since})], "must_not": [back]},
        "at_risk": {"filter": [settled, anchor({"lt": active_since, "gte": churned_before})]},
        "churned": {"filter": [settled, anchor({"lt": churned_before})]},
    }
    return {"bool": clauses[state]}


def _sql_segment(boxes: list[Box]) -> Any:
    c = users.c

    def inside(box: Box) -> Any:
        conditions = [c.orders > 0]
        if box.ordered_from is not None:
            conditions.append(c.last_order_at >= box.ordered_from)
        if box.ordered_before is not None:
            conditions.append(c.last_order_at < box.ordered_before)
        if box.orders_above is not None:
            conditions.append(c.orders > box.orders_above)
        if box.orders_through is not None:
            conditions.append(c.orders <= box.orders_through)
        return and_(*conditions)

    return or_(*(inside(b) for b in boxes)) if boxes else false()


def _es_segment(boxes: list[Box]) -> dict[str, Any]:
    def inside(box: Box) -> dict[str, Any]:
        ordered: dict[str, str] = {}
        if box.ordered_from is not None:
            ordered["gte"] = box.ordered_from.isoformat() + "Z"
        if box.ordered_before is not None:
            ordered["lt"] = box.ordered_before.isoformat() + "Z"
        orders: dict[str, int] = {"gt": max(box.orders_above or 0, 0)}
        if box.orders_through is not None:
            orders["lte"] = box.orders_through
        when = {"range": {"last_order_at": ordered}} if ordered else {"exists": {"field": "last_order_at"}}
        return {"bool": {"filter": [when, {"range": {"orders": orders}}]}}

    if not boxes:
        return {"match_none": {}}
    return {"bool": {"should": [inside(b) for b in boxes], "minimum_should_match": 1}}


def _after(sort_values: list[Any]) -> Any:
    c = users.c
    at_text, user_id = sort_values
    if at_text is None:
        return and_(c.last_active_at.is_(None), c.user_id > user_id)
    at = datetime.fromisoformat(at_text)
    return or_(
        c.last_active_at < at,
        c.last_active_at.is_(None),
        and_(c.last_active_at == at, c.user_id > user_id),
    )


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    """The sort values of the last user of the previous page; ValueError when malformed."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as e:
        raise ValueError("malformed cursor") from e
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError("malformed cursor")
    return values
