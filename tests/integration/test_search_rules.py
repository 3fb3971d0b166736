"""Every lifecycle state and RFM segment is one rule; its SQL (SQLite, PostgreSQL) and Elasticsearch
compilations find exactly the users for which the rule holds in Python, for users placed on both
sides of every threshold, down to the microsecond. `q` matches alike on the three backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from projections.lifecycle import STATES, Thresholds, lifecycle_rule, state
from projections.rfm import SEGMENT_NAMES, rfm_cuts, segment_boxes, segment_rule
from projections.rules import (
    FIELDS,
    OPS,
    AllOf,
    AnyOf,
    Compare,
    Missing,
    Not,
    Prefix,
    Rule,
    fold,
    from_millis,
    holds,
    millis,
)
from projections.rules_elasticsearch import to_elasticsearch
from projections.rules_sql import to_sql
from projections.search import UserQuery, user_document, user_state
from projections.users import users
from tests.integration.search_backends import BACKENDS, every_page, in_order, open_backends, user_row

WATERMARK = datetime(2025, 5, 4, 15, 30, 45, 123456, tzinfo=UTC)
THRESHOLDS = Thresholds(7, 30, 90)
US, MS, DAY = timedelta(microseconds=1), timedelta(milliseconds=1), timedelta(days=1)


@pytest.fixture
def backends(tmp_path, pg_url, service_urls):
    with open_backends(tmp_path, pg_url, service_urls.elasticsearch) as opened:
        yield opened


def near(bound: datetime) -> list[datetime]:
    """Instants on both sides of `bound` and of the millisecond it lies in."""
    floor = from_millis(millis(bound))
    return sorted({floor - MS, floor - US, floor, floor + US, bound - US, bound, bound + US, floor + MS - US})


def lifecycle_users() -> list[dict]:
    rows = []
    long_ago = WATERMARK - 400 * DAY
    back_since = WATERMARK.date() - THRESHOLDS.active_days * DAY
    bounds = [WATERMARK - days * DAY for days in (7, 30, 90)] + [WATERMARK]
    for b, bound in enumerate(bounds):
        for i, at in enumerate(near(bound)):
            n = f"{b}-{i}"
            rows.append(user_row(f"never-active-{n}", at))
            rows.append(user_row(f"seen-{n}", at, last_active_at=WATERMARK))
            rows.append(user_row(f"active-{n}", long_ago, last_active_at=at))
            rows.append(user_row(f"back-{n}", long_ago, last_active_at=at, resurrected_on=back_since))
    for d in (-1, 0, 1):
        for last in (WATERMARK - DAY, WATERMARK - 45 * DAY, None):
            rows.append(
                user_row(
                    f"resurrected-{d}-{last and last.day}",
                    long_ago,
                    last_active_at=last,
                    resurrected_on=back_since + d * DAY,
                )
            )
    return rows


def customers(one_time_buyers: int) -> list[dict]:
    """Customers whose last orders lie at the first and last instants of a dozen days, and at noon,
    with one to six orders; plus one-time buyers, who tie."""
    rows = []
    start = date(2025, 4, 1)
    for d in range(12):
        midnight = datetime.combine(start + d * DAY, time(), UTC)
        for i, at in enumerate(
            (midnight, midnight + 12 * 3600 * 1000 * MS, midnight + DAY - MS, midnight + DAY - US)
        ):
            orders = 1 + (7 * d + i) % 6
            rows.append(
                user_row(
                    f"c-{d:02}-{i}", midnight - 20 * DAY, last_active_at=at, last_order_at=at, orders=orders
                )
            )
    for n in range(one_time_buyers):
        at = datetime.combine(start + (n % 12) * DAY, time(), UTC) + n * US
        rows.append(user_row(f"once-{n:03}", at, last_active_at=at, last_order_at=at, orders=1))
    return rows


def ids_where(rows: list[dict], rule: Rule) -> list[str]:
    return in_order(r for r in rows if holds(rule, r))


def elapsed_ms(since: datetime | None, until: datetime) -> int:
    return millis(until) - millis(since)  # type: ignore[arg-type]


def defined_state(row: dict) -> str:
    """metrics.md "User state" with durations in whole milliseconds, independent of the rules."""
    days = 24 * 3600 * 1000
    if elapsed_ms(row["first_seen_at"], WATERMARK) <= THRESHOLDS.new_days * days:
        return "new"
    idle = elapsed_ms(row["last_active_at"] or row["first_seen_at"], WATERMARK)
    if idle <= THRESHOLDS.active_days * days:
        back = row["resurrected_on"]
        recent = back is not None and (WATERMARK.date() - back).days <= THRESHOLDS.active_days
        return "resurrected" if recent else "active"
    return "at_risk" if idle <= THRESHOLDS.churn_days * days else "churned"


def test_every_lifecycle_search_finds_exactly_the_users_its_rule_holds_for(backends):
    rows = lifecycle_users() + customers(5)
    backends.load(rows)
    found_states = set()
    for row in rows:
        holding = [name for name in STATES if holds(lifecycle_rule(name, WATERMARK, THRESHOLDS), row)]
        assert holding == [defined_state(row)], row["user_id"]
        shown = user_state(user_document(row), WATERMARK, THRESHOLDS, rfm_cuts_of(backends))
        assert (
            shown["lifecycle"]
            == holding[0]
            == state(
                row["first_seen_at"], row["last_active_at"], row["resurrected_on"], WATERMARK, THRESHOLDS
            )
        )
        found_states.add(holding[0])
    assert found_states == set(STATES)
    for name in STATES:
        want = ids_where(rows, lifecycle_rule(name, WATERMARK, THRESHOLDS))
        query = UserQuery(lifecycle=name, watermark=WATERMARK, thresholds=THRESHOLDS, size=17)
        for backend, search in backends.searches.items():
            assert every_page(search, query) == want, (name, backend)


def rfm_cuts_of(backends):
    with backends.sql["sqlite"].connect() as conn:
        return rfm_cuts(conn)


@pytest.mark.parametrize("one_time_buyers", [0, 60])
def test_every_segment_search_finds_exactly_the_customers_its_rule_holds_for(backends, one_time_buyers):
    rows = customers(one_time_buyers) + lifecycle_users()[:20]
    backends.load(rows)
    cuts = rfm_cuts_of(backends)
    with backends.sql["postgresql"].connect() as conn:
        assert rfm_cuts(conn) == cuts
    segments = {}
    for row in rows:
        shown = user_state(user_document(row), WATERMARK, THRESHOLDS, cuts)["segment"]
        holding = [name for name in SEGMENT_NAMES if holds(segment_rule(name, cuts), row)]
        assert holding == ([shown] if shown else []), row["user_id"]
        segments[row["user_id"]] = shown
    assert len(set(segments.values()) - {None}) >= 5
    for name in SEGMENT_NAMES:
        want = ids_where(rows, segment_rule(name, cuts))
        by_name = UserQuery(segment=name, cuts=cuts, size=13)
        by_boxes = UserQuery(segment=segment_boxes(name, cuts), size=13)
        for backend, search in backends.searches.items():
            assert every_page(search, by_name) == want, (name, backend)
            assert every_page(search, by_boxes) == want, (name, backend)


def matching(backends, rule: Rule) -> dict[str, set[str]]:
    """The user ids each backend finds for the rule, compiled directly."""
    found = {}
    for backend, engine in backends.sql.items():
        with engine.connect() as conn:
            found[backend] = set(conn.execute(select(users.c.user_id).where(to_sql(rule))).scalars())
    response = backends.index.client.search(
        index=backends.index.index, query=to_elasticsearch(rule), size=10_000, source=False
    )
    found["elasticsearch"] = {hit["_id"] for hit in response["hits"]["hits"]}
    return found


BOUNDS = {
    "first_seen_at": near(WATERMARK - 7 * DAY),
    "last_active_at": [*near(WATERMARK - 30 * DAY), datetime(1960, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)],
    "last_order_at": near(datetime(2025, 4, 5, tzinfo=UTC)),
    "resurrected_on": [WATERMARK.date() - 31 * DAY, WATERMARK.date() - 30 * DAY, WATERMARK.date()],
    "orders": [-(2**40), -1, 0, 1, 3, 6, 2**31 - 1, 2**31, 2**40],
    "user_id": ["", "c-05-1", "once", "resurrected", "~"],
    "country": ["", "FR", "GB", "gb"],
}


def test_every_operator_on_every_field_compiles_to_what_the_rule_means(backends):
    rows = lifecycle_users() + customers(10)
    rows += [user_row(f"old-{n}", datetime(1960, 1, 1, 0, 0, 0, 1000 * n, tzinfo=UTC)) for n in (1, 2)]
    rows[-1]["last_active_at"] = rows[-1]["first_seen_at"]
    for n, row in enumerate(rows):
        row["country"] = ("GB", "FR", "gb", None)[n % 4]
    backends.load(rows)
    assert set(BOUNDS) == set(FIELDS)
    for field, bounds in BOUNDS.items():
        for bound in bounds:
            for op in OPS:
                compare = Compare(field, op, bound)
                for rule in (
                    compare,
                    Not(compare),
                    AnyOf((compare, Missing(field))),
                    AllOf((Not(Missing(field)), compare)),
                ):
                    want = {r["user_id"] for r in rows if holds(rule, r)}
                    assert matching(backends, rule) == dict.fromkeys(BACKENDS, want), rule


IDS = [
    "u1",
    "U2",
    "uX",
    "Ux",
    "ab_c",
    "abXc",
    "a%b",
    "a\\b",
    "é1",
    "É2",
    "ß",
    "SS",
    "ss",
    "İx",
    "ix",
    "Ix",
    "\u0131",  # dotless i
    ".*",
    "a.b",
    "[x]",
    "*",
    "Ωmega",
    "ωmega",
    "日本",
    "17850",
    "178",
]
QUERIES = [
    "u",
    "U",
    "ux",
    "UX",
    "ab_",
    "AB%",
    "a%",
    "a\\",
    "a_",
    "é",
    "É",
    "ss",
    "SS",
    "ß",
    "i",
    "I",
    "İ",
    "\u0131",  # dotless i
    ".",
    ".*",
    "[",
    "*",
    "Ω",
    "ω",
    "日",
    "178",
    "17850",
    "1785",
    "x",
    "%",
    "_",
    "\\",
]


def test_q_is_the_same_prefix_match_on_every_backend(backends):
    rows = [user_row(i, WATERMARK - n * MS, last_active_at=WATERMARK - n % 3 * MS) for n, i in enumerate(IDS)]
    backends.load(rows)
    for q in QUERIES:
        want = in_order(r for r in rows if fold(r["user_id"]).startswith(fold(q)))
        assert want == ids_where(rows, Prefix("user_id", q)), q
        for backend, search in backends.searches.items():
            assert every_page(search, UserQuery(q=q, size=5)) == want, (q, backend)
    assert set(ids_where(rows, Prefix("user_id", "u"))) == {"u1", "U2", "uX", "Ux"}
    assert ids_where(rows, Prefix("user_id", "é")) == ["é1"]
    assert set(ids_where(rows, Prefix("user_id", "ss"))) == {"SS", "ss"}


def jittered(bound: datetime) -> st.SearchStrategy[datetime]:
    """Instants at most a few milliseconds from `bound`, or anywhere in the surrounding days."""
    near_bound = st.integers(-3000, 3000).map(lambda us: bound + us * US)
    return near_bound | st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: bound + timedelta(seconds=s))


@st.composite
def populations(draw: st.DrawFn) -> tuple[datetime, Thresholds, list[dict]]:
    watermark = WATERMARK + draw(st.integers(0, 86_400_000_000)) * US
    new_days = draw(st.integers(1, 10))
    active_days = draw(st.integers(new_days, 40))
    thresholds = Thresholds(new_days, active_days, draw(st.integers(active_days + 1, 120)))
    bounds = [watermark - days * DAY for days in (new_days, active_days, thresholds.churn_days)]
    moments = st.sampled_from(bounds).flatmap(jittered)
    rows = []
    for n in range(draw(st.integers(1, 40))):
        first = draw(moments)
        seen = draw(st.none() | moments)
        last = None if seen is None else max(seen, first)  # never active before first seen
        orders = draw(st.integers(0, 4))
        ordered = draw(moments) if orders else None
        back = draw(st.none() | st.integers(-2, 2)) if last else None
        rows.append(
            user_row(
                f"h{n}",
                first,
                last_active_at=last,
                last_order_at=ordered,
                orders=orders,
                resurrected_on=None if back is None else watermark.date() - (active_days + back) * DAY,
            )
        )
    return watermark, thresholds, rows


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(populations())
def test_random_users_are_found_by_the_rules_on_every_backend(backends, population):
    watermark, thresholds, rows = population
    backends.load(rows)
    cuts = rfm_cuts_of(backends)
    searches = backends.searches
    for name in STATES:
        want = ids_where(rows, lifecycle_rule(name, watermark, thresholds))
        query = UserQuery(lifecycle=name, watermark=watermark, thresholds=thresholds, size=7)
        for backend, search in searches.items():
            assert every_page(search, query) == want, (name, backend)
    for name in SEGMENT_NAMES:
        want = ids_where(rows, segment_rule(name, cuts))
        assert want == in_order(
            r for r in rows if user_state(user_document(r), watermark, thresholds, cuts)["segment"] == name
        )
        for backend, search in searches.items():
            assert every_page(search, UserQuery(segment=name, cuts=cuts, size=7)) == want, (name, backend)


def test_filters_no_backend_can_hold_are_refused_or_find_nobody(client):
    reader = {"Authorization": "Bearer read"}
    for name in ("q", "country"):
        response = client.get("/v1/users/search", query_string={name: "a\u0000"}, headers=reader)
        assert response.status_code == 400
        assert response.json["error"]["code"] == "invalid_parameter"
        assert response.json["error"]["details"][0]["field"] == name
    response = client.get("/v1/users/search", query_string={"min_orders": str(10**30)}, headers=reader)
    assert response.status_code == 200 and response.json["users"] == []
