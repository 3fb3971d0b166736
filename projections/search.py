"""User search: documents in Elasticsearch kept equal to the user rows, and the same query over
SQL for the embedded default.

Each document's external version is the last log position applied to its user, so a stale or
repeated write is refused by Elasticsearch and the index converges to the read model.

A query is one rule (projections.rules) made of its filters, the lifecycle state's rule and the
segment's rule, compiled for the backend that answers it; both sort alike and page with the same
cursor (projections.cursors)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from domain.envelope import format_timestamp
from projections.cursors import SortKey, decode_cursor, encode_cursor, key_of
from projections.failures import DocumentRejected, TransientError
from projections.lifecycle import Thresholds, lifecycle_rule, state
from projections.money import rounded_money
from projections.rfm import Box, Cuts, boxes_rule, present_rfm, segment_rule
from projections.rules import (
    NOBODY,
    Compare,
    Missing,
    Prefix,
    Rule,
    all_of,
    any_of,
    from_millis,
)
from projections.rules_elasticsearch import to_elasticsearch
from projections.rules_sql import code_points, to_millisecond, to_sql
from projections.schema import money_text
from projections.sql import key_chunks
from projections.users import money, users
from projections.value import user_revenue

MAX_PAGE = 100
RESHAPED_FIELDS = ("net_revenue",)
"""Fields whose mapping a release changed (revision 0006: net revenue per currency, an object)."""
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
        "net_revenue": {"type": "object", "enabled": False},
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
    """Users whose id starts with `q`, ASCII letters compared without case."""
    country: str | None = None
    min_orders: int | None = None
    last_active_before: datetime | None = None
    lifecycle: str | None = None
    """A lifecycle state at `watermark` under `thresholds` (none without a watermark)."""
    segment: str | Sequence[Box] | None = None
    """An RFM segment by name under `cuts`, or as its boxes (projections.rfm.segment_boxes)."""
    watermark: datetime | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    cuts: Cuts | None = None
    size: int = 20
    after: str | None = None
    """The cursor of the previous page (projections.cursors); InvalidCursor when malformed."""


def query_rule(query: UserQuery) -> Rule:
    """The rule that holds for exactly the users the query asks for (before paging)."""
    rules: list[Rule] = []
    if query.q:
        rules.append(Prefix("user_id", query.q))
    if query.country:
        rules.append(Compare("country", "==", query.country))
    if query.min_orders is not None:
        rules.append(Compare("orders", ">=", query.min_orders))
    if query.last_active_before is not None:
        rules.append(Compare("last_active_at", "<", query.last_active_before))
    if query.lifecycle is not None:
        rules.append(_lifecycle(query.lifecycle, query))
    if query.segment is not None:
        rules.append(_segment(query))
    return all_of(*rules)


def _lifecycle(name: str, query: UserQuery) -> Rule:
    if query.watermark is None:
        return NOBODY
    return lifecycle_rule(name, query.watermark, query.thresholds)


def _segment(query: UserQuery) -> Rule:
    if isinstance(query.segment, str):
        return segment_rule(query.segment, query.cuts or Cuts(0))
    return boxes_rule(query.segment or ())


def after_rule(key: SortKey) -> Rule:
    """The users that sort after `key`: less recently active, never active, or as recently
    (to the millisecond) with a greater user id."""
    if key.last_active_ms is None:
        return all_of(Missing("last_active_at"), Compare("user_id", ">", key.user_id))
    at = from_millis(key.last_active_ms)
    return any_of(
        Compare("last_active_at", "<", at),
        Missing("last_active_at"),
        all_of(Compare("last_active_at", "==", at), Compare("user_id", ">", key.user_id)),
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
        """Create the index unless it exists; another process creating it meanwhile is fine.
        StaleIndex when it exists with an older shape of the documents (`cohortline migrate`
        replaces it: replace_stale)."""
        from elasticsearch import BadRequestError

        if self.client.indices.exists(index=self.index):
            if self.stale():
                raise StaleIndex(self.index)
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

    def stale(self) -> bool:
        """The index exists, but holds a field that a release reshaped in its earlier shape (an
        Elasticsearch field cannot change type in place). Any other mismatch is the operator's
        mapping: the documents it refuses are dead-lettered, to be retried once it is fixed."""
        held = self.client.indices.get_mapping(index=self.index)
        properties = next(iter(held.values()))["mappings"].get("properties", {})
        return any(
            name in properties
            and _field_shape(properties[name]) != _field_shape(INDEX_MAPPING["properties"][name])
            for name in RESHAPED_FIELDS
        )

    def replace_stale(self, conn: Connection) -> bool:
        """When the index is stale, delete it, create it anew and index every user row into it
        (`cohortline migrate`, before the services start again); True when it did."""
        if not self.client.indices.exists(index=self.index) or not self.stale():
            return False
        self.client.indices.delete(index=self.index)
        self.ensure_index()
        self.reindex(conn)
        return True

    def index_rows(self, rows: Iterable[Mapping[str, Any]], version_type: str = "external") -> None:
        """Index the documents of user rows that carry their net revenue (attach_net_revenue)."""
        operations: list[dict[str, Any]] = []
        for row in rows:
            doc = user_document(row)
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
            rows = [
                dict(row)
                for row in conn.execute(
                    select(users).where(c.user_id > after).order_by(c.user_id).limit(1000)
                ).mappings()
            ]
            if not rows:
                return
            attach_net_revenue(conn, rows)
            self.index_rows(rows, version_type="external_gte")
            after = rows[-1]["user_id"]

    def get(self, user_id: str) -> dict[str, Any] | None:
        response = self.client.options(ignore_status=404).get(index=self.index, id=user_id)
        return response["_source"] if response.get("found") else None

    def search(self, query: UserQuery) -> UserPage:
        size = min(query.size, MAX_PAGE)
        body: dict[str, Any] = {
            "query": {"bool": {"filter": [to_elasticsearch(query_rule(query))]}},
            "sort": [
                {"last_active_at": {"order": "desc", "missing": "_last"}},
                {"user_id": {"order": "asc"}},
            ],
            "size": size + 1,
        }
        if query.after:
            key = decode_cursor(query.after)
            at = _ES_MISSING_DESC if key.last_active_ms is None else key.last_active_ms
            body["search_after"] = [at, key.user_id]
        hits = self.client.search(index=self.index, **body)["hits"]["hits"]
        page = hits[:size]
        cursor = encode_cursor(_es_key(page[-1]["sort"])) if len(hits) > size else None
        return UserPage([h["_source"] for h in page], cursor)


class StaleIndex(Exception):
    """The user index holds documents of an older shape: `cohortline migrate` replaces it."""

    def __init__(self, index: str):
        super().__init__(
            f"the search index {index!r} holds user documents of an older shape: run `cohortline migrate` "
            "(with the same COHORTLINE_ELASTICSEARCH_URL and _INDEX) to replace and refill it"
        )
        self.index = index


def _field_shape(spec: Mapping[str, Any]) -> tuple[Any, Any]:
    return spec.get("type", "object"), spec.get("enabled", True)


_ES_MISSING_DESC = -(2**63)
"""The sort value Elasticsearch gives a document without `last_active_at`, sorted last, descending."""


def _es_key(sort: list[Any]) -> SortKey:
    at, user_id = sort
    return SortKey(None if at == _ES_MISSING_DESC else at, user_id)


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
        rule = query_rule(query)
        if query.after:
            rule = all_of(rule, after_rule(decode_cursor(query.after)))
        size = min(query.size, MAX_PAGE)
        stmt = (
            select(users)
            .where(to_sql(rule))
            .order_by(
                c.last_active_at.is_(None),
                to_millisecond(c.last_active_at).desc(),
                code_points(c.user_id),
            )
            .limit(size + 1)
        )
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            page = rows[:size]
            attach_net_revenue(conn, page)
        cursor = None
        if len(rows) > size:
            cursor = encode_cursor(key_of(page[-1]["last_active_at"], page[-1]["user_id"]))
        return UserPage([user_document(r) for r in page], cursor)


def attach_net_revenue(conn: Connection, rows: Iterable[MutableMapping[str, Any]]) -> None:
    """Set each user row's `net_revenue` to what rm_user_revenue holds for the user: currency → net
    revenue in 1/10,000 units, a currency without any payment or refund left out (`{}` for none).
    The rows of rm_users do not carry it; user_document needs it."""
    by_user = {row["user_id"]: row for row in rows}
    for row in by_user.values():
        row["net_revenue"] = {}
    c = user_revenue.c
    for chunk in key_chunks(by_user):
        query = select(c.user_id, c.currency, c.net).where(c.user_id.in_(chunk))
        for user_id, currency, net in conn.execute(query):
            by_user[user_id]["net_revenue"][currency] = net


def user_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A user row with its net revenue (attach_net_revenue) as both search backends hold and return
    it: times in RFC 3339, money as exact decimal text per currency (user_state presents it)."""
    return {
        "user_id": row["user_id"],
        "first_seen_at": format_timestamp(row["first_seen_at"]),
        "signup_at": format_timestamp(row["signup_at"]),
        "first_order_at": format_timestamp(row["first_order_at"]),
        "last_active_at": format_timestamp(row["last_active_at"]),
        "last_order_at": format_timestamp(row["last_order_at"]),
        "orders": row["orders"],
        "net_revenue": {currency: money_text(net) for currency, net in sorted(row["net_revenue"].items())},
        "points": row["points"],
        "open_tickets": row["open_tickets"],
        "country": row["country"],
        "channel": row["channel"],
        "tier": row["tier"],
        "resurrected_on": row["resurrected_on"].isoformat() if row["resurrected_on"] else None,
        "last_position": row["last_position"],
    }


def present_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """A user document as the API shows it (before lifecycle and RFM): money per currency rounded
    half-even to 2 places (metrics.md "Conventions")."""
    held = user["net_revenue"]
    return {**user, "net_revenue": {c: rounded_money(money(Decimal(held[c]))) for c in sorted(held)}}


def user_state(
    user: dict[str, Any], watermark: datetime | None, thresholds: Thresholds, cuts: Cuts
) -> dict[str, Any]:
    """The user of a search document, presented, with its lifecycle state and RFM at the watermark
    (metrics.md "User state"); both are relative to the watermark, so they are derived when asked,
    not stored. RFM ranks the exact amounts; only what is shown is rounded."""
    shown = present_user(user)
    if watermark is None:
        return {**shown, "lifecycle": None, "segment": None, "rfm": None}
    first = datetime.fromisoformat(user["first_seen_at"])
    last = datetime.fromisoformat(user["last_active_at"]) if user["last_active_at"] else None
    back = date.fromisoformat(user["resurrected_on"]) if user["resurrected_on"] else None
    rfm = present_rfm(user, watermark, cuts)
    return {
        **shown,
        "lifecycle": state(first, last, back, watermark, thresholds),
        "segment": rfm["segment"] if rfm else None,
        "rfm": rfm,
    }
