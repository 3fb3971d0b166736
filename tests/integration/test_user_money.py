"""The user state's money on every backend (metrics.md "Conventions", "User state", "RFM"): net
revenue per currency, exact in the search documents and rounded when shown, alike from SQLite,
PostgreSQL and Elasticsearch; RFM's monetary ranked in the reporting currency only; and a user index
of the older document shape is refused, then replaced by `cohortline migrate`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch
from sqlalchemy import delete, insert

from projections.lifecycle import Thresholds
from projections.orders import orders
from projections.rfm import rfm_cuts
from projections.search import (
    INDEX_MAPPING,
    ElasticsearchUsers,
    StaleIndex,
    UserQuery,
    attach_net_revenue,
    user_document,
    user_state,
)
from projections.users import users
from tests import services
from tests.integration.search_backends import open_backends, user_row

WATERMARK = datetime(2025, 5, 4, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def backends(tmp_path, pg_url, service_urls):
    with open_backends(tmp_path, pg_url, service_urls.elasticsearch) as opened:
        yield opened


def customers() -> list[dict]:
    """Twelve customers with GBP and EUR net revenue (1/10,000 units), some without either; two
    differ only beyond the cent."""
    nets = [
        {"GBP": 12_349, "EUR": 9_000_000},
        {"GBP": 12_341},
        {"GBP": -5_000},
        {"EUR": 1},
        {},
        {"GBP": 0},
        {"GBP": 700_050, "EUR": 25},
        {"GBP": 700_150},
        {"EUR": 3_000_000},
        {"GBP": 99_999_999_999_999},
        {"GBP": 5},
        {"EUR": -10},
    ]
    rows = []
    for n, net in enumerate(nets):
        at = WATERMARK - (n + 1) * DAY
        row = user_row(f"c{n:02}", at - DAY, last_active_at=at, last_order_at=at, orders=1 + n % 3)
        rows.append({**row, "net_revenue": net})
    return rows


def load_orders(backends, currencies: list[str]) -> None:
    """rm_orders with orders in these currencies (what the default reporting currency counts)."""
    rows = [
        {"order_id": f"o{n}", "user_id": "c00", "placed_at": WATERMARK.replace(tzinfo=None), "currency": c}
        for n, c in enumerate(currencies)
    ]
    for engine in backends.sql.values():
        with engine.begin() as conn:
            conn.execute(delete(orders))
            conn.execute(insert(orders), rows)


def quintile(value: int, values: list[int]) -> int:
    return 1 + 5 * sum(1 for v in values if v < value) // len(values)


def shown_states(backends, cuts) -> dict[str, dict[str, dict]]:
    """backend → user → the user state as the API shows it, from each backend's own documents."""
    thresholds = Thresholds()
    found = {}
    for backend, engine in backends.sql.items():
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(users.select()).mappings()]
            attach_net_revenue(conn, rows)
        found[backend] = {
            r["user_id"]: user_state(user_document(r), WATERMARK, thresholds, cuts) for r in rows
        }
    index = backends.index
    found["elasticsearch"] = {
        user_id: user_state(index.get(user_id), WATERMARK, thresholds, cuts) for user_id in found["sqlite"]
    }
    return found


@pytest.mark.parametrize(
    ("currencies", "configured", "reporting"),
    [
        (["EUR", "GBP", "GBP"], None, "GBP"),  # most orders
        (["GBP", "EUR"], None, "EUR"),  # tied: the first code
        (["GBP", "GBP"], "EUR", "EUR"),  # configured
        (["GBP"], "JPY", "JPY"),  # configured, held by nobody: every monetary is 0
    ],
)
def test_monetary_ranks_every_customer_in_the_reporting_currency_on_every_backend(
    backends, currencies, configured, reporting
):
    rows = customers()
    backends.load(rows)
    load_orders(backends, currencies)
    cuts = {}
    for backend, engine in backends.sql.items():
        with engine.connect() as conn:
            cuts[backend] = rfm_cuts(conn, configured)
    assert cuts["sqlite"] == cuts["postgresql"]
    assert cuts["sqlite"].currency == reporting
    monetary = {r["user_id"]: r["net_revenue"].get(reporting, 0) for r in rows}
    states = shown_states(backends, cuts["sqlite"])
    assert states["sqlite"] == states["postgresql"] == states["elasticsearch"]
    for user_id, state in states["sqlite"].items():
        rfm = state["rfm"]
        assert rfm["currency"] == reporting, user_id
        assert rfm["m"] == quintile(monetary[user_id], list(monetary.values())), user_id
    # exact amounts rank, rounded ones are shown
    if reporting == "GBP":
        c00, c01 = states["sqlite"]["c00"]["rfm"], states["sqlite"]["c01"]["rfm"]
        assert c00["monetary"] == c01["monetary"] == "1.23" and c00["m"] > c01["m"]


def test_net_revenue_is_exact_per_currency_in_the_documents_and_rounded_when_shown(backends):
    rows = customers()
    backends.load(rows)
    load_orders(backends, ["GBP"])
    with backends.sql["sqlite"].connect() as conn:
        cuts = rfm_cuts(conn)
    states = shown_states(backends, cuts)
    assert states["sqlite"] == states["postgresql"] == states["elasticsearch"]
    for backend, search in backends.searches.items():
        documents = {}
        for user_id in states["sqlite"]:
            page = search.search(UserQuery(q=user_id, size=5))
            [documents[user_id]] = page.users
        assert documents["c00"]["net_revenue"] == {"EUR": "900.00", "GBP": "1.2349"}, backend
        assert documents["c04"]["net_revenue"] == {}, backend
        assert documents["c06"]["net_revenue"] == {"EUR": "0.0025", "GBP": "70.005"}, backend
        assert documents["c09"]["net_revenue"] == {"GBP": "9999999999.9999"}, backend
    shown = states["sqlite"]
    assert shown["c00"]["net_revenue"] == {"EUR": "900.00", "GBP": "1.23"}
    assert shown["c04"]["net_revenue"] == {}
    assert shown["c06"]["net_revenue"] == {"EUR": "0.00", "GBP": "70.00"}  # half to even
    assert shown["c07"]["net_revenue"] == {"GBP": "70.02"}
    assert shown["c09"]["net_revenue"] == {"GBP": "10000000000.00"}
    assert shown["c11"]["net_revenue"] == {"EUR": "0.00"}  # -0.001: never -0.00


def test_an_index_of_the_older_shape_is_refused_then_replaced_and_refilled(backends, service_urls):
    rows = customers()
    backends.load(rows)
    name = services.unique_name("cohortline-test-stale")
    old = {**INDEX_MAPPING, "properties": {**INDEX_MAPPING["properties"]}}
    old["properties"]["net_revenue"] = {"type": "keyword", "index": False}
    client = Elasticsearch(service_urls.elasticsearch, request_timeout=30)
    try:
        client.indices.create(index=name, mappings=old)
        index = ElasticsearchUsers(client, name)
        assert index.stale()
        with pytest.raises(StaleIndex, match="cohortline migrate"):
            index.ensure_index()
        with backends.sql["postgresql"].connect() as conn:
            assert index.replace_stale(conn)
            assert not index.replace_stale(conn)  # current now
        index.ensure_index()
        client.indices.refresh(index=name)
        assert client.count(index=name)["count"] == len(rows)
        assert index.get("c00")["net_revenue"] == {"EUR": "900.00", "GBP": "1.2349"}
        assert not ElasticsearchUsers(client, backends.index.index).stale()
    finally:
        client.options(ignore_status=404).indices.delete(index=name)
        client.close()
