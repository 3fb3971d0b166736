"""Injection payloads are data: SQL, LIKE, Elasticsearch query-string and JSON fragments, NUL and
other characters, sent in the user search's `q`, in both `after` cursors and in every path
parameter, on SQLite, PostgreSQL and the Elasticsearch search backend. No answer is a server error;
a search finds exactly the seeded users a plain Python prefix match finds (api.md: a prefix of the
user id, only ASCII letters ignore case, `%` and `_` match themselves); a cursor pages from exactly
the sort key it holds; a path names exactly the user, stream, campaign, feature or projection it
spells; and afterwards every table is there with the rows it had. (tests/e2e/test_openapi_fuzz.py
checks the answers against the document; this is about what the payloads mean.)"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import Engine, func, inspect, select, table

from api.app import create_app
from api.common import POSITION_MAX
from api.dashboard.language import LANGUAGES
from api.feature_names import FEATURE
from infra.bootstrap import build_system
from infra.config import load_settings
from projections.cursors import InvalidCursor, SortKey, decode_cursor, encode_cursor
from projections.rules import fold
from streams.local import LocalFollower
from streams.log_reader import LogReader
from tests import services
from tests.integration.conftest import KEYS

ADMIN = {"Authorization": "Bearer admin"}
PRODUCER = {"Authorization": "Bearer prod"}
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

ACTIVE = {
    "ada": 0,
    "ADA-2": 1,
    "a%b": 2,
    "a_b": 3,
    "axb": 3,
    "a\\b": 4,
    "o'brien": 5,
    'say"hi': 6,
    "x' OR 1=1 --": 7,
    "user_id:*": 8,
    "*star": 9,
    "(paren": 10,
    "/regex/": 11,
    "日本-1": 12,
    "Ωmega": 12,
    '{"json": 1}': 13,
    "É-upper": 14,
    "é-lower": 15,
    "line\nbreak": 16,
}
"""The seeded users with the minute of their activity after START (ties sort by user id)."""
NEVER_ACTIVE = "never-active"
ORDER = "o' OR '1'='1"
CAMPAIGN = 'c"; DROP TABLE cohortline_events; --'
TICKET = "t%_\\"
TOOLS = {"ada": "check_in", "ADA-2": "price' OR 1=1", "a%b": "100%_off"}
SCENE = "shopping"
STREAMS = {
    "user": [*ACTIVE, NEVER_ACTIVE],
    "order": [ORDER],
    "campaign": [CAMPAIGN],
    "ticket": [TICKET],
}

CLASSIC = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '"; DROP TABLE cohortline_events; --',
    "'; DROP TABLE rm_users; --",
    "1; SELECT pg_sleep(0)",
    "%",
    "_",
    "%%",
    "a%",
    "a_",
    "a%b",
    "\\",
    "\\%",
    "a\\",
    "\x00",
    "a\x00b",
    "*",
    "a*",
    "user_id:*",
    "user_id:ada",
    "OR",
    "ada OR axb",
    "(",
    ")",
    "/regex/",
    "/.*/",
    "~",
    "?",
    "[",
    "{",
    '{"match_all": {}}',
    '"}',
    "'",
    '"',
    "`",
    "$where",
    "<script>",
    "../../etc/passwd",
    "..",
    ".",
    "\uff41da",  # fullwidth a
    "İ",
    "ß",
    "日本",
    "\u202e",
    "\ufeff",
    "\n",
    "\r\n",
    " ",
    "a" * 129,
    "%00",
    "%2F",
    "verify",
    "analytics",
]
GENERATED = st.text(max_size=12) | st.tuples(st.sampled_from(CLASSIC), st.text(max_size=4)).map("".join)
"""Beyond CLASSIC, which every test sends whole."""
SEEDED_PREFIXES = st.sampled_from([*ACTIVE, NEVER_ACTIVE]).flatmap(
    lambda user: st.tuples(st.integers(1, len(user)), st.booleans()).map(
        lambda cut: user[: cut[0]].swapcase() if cut[1] else user[: cut[0]]
    )
)
FUZZ = settings(
    deadline=None, database=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def last_active_ms(user: str) -> int | None:
    if user not in ACTIVE:
        return None
    return int((START + timedelta(minutes=ACTIVE[user])).timestamp() * 1000)


def sort_key(user: str) -> tuple[bool, int, str]:
    """The search's order (projections.cursors.SORT): newest activity first, never active last,
    then user id by code point."""
    ms = last_active_ms(user)
    return (ms is None, -ms if ms is not None else 0, user)


IN_ORDER = sorted(STREAMS["user"], key=sort_key)


def history() -> list[dict[str, Any]]:
    def event(type_: str, user: str | None, minute: int, **data: Any) -> dict[str, Any]:
        body = {
            "event_id": str(uuid.uuid4()),
            "type": type_,
            "occurred_at": (START + timedelta(minutes=minute)).isoformat(),
            "data": data,
        }
        return body if user is None else {**body, "user_id": user}

    campaign = {"name": "Spring", "kind": "incentive", "starts_at": "2025-03-01T00:00:00Z"}
    events = [event("CampaignCreated", None, -60, campaign_id=CAMPAIGN, **campaign)]
    events.append(event("MembershipChanged", NEVER_ACTIVE, -30, tier="gold"))
    for user, minute in ACTIVE.items():
        events.append(event("SessionStarted", user, minute))
        if user in TOOLS:
            events.append(event("ToolUsed", user, minute, tool=TOOLS[user]))
    events += [
        event("SceneVisited", "ada", 0, scene=SCENE),
        event("CampaignEnrolled", "ada", -1, campaign_id=CAMPAIGN, group="treatment"),
        event("TicketOpened", "ada", 0, ticket_id=TICKET, subject="late"),
        event("OrderPlaced", "o'brien", ACTIVE["o'brien"], order_id=ORDER, amount="9.50", currency="EUR"),
    ]
    return events


@dataclass
class Seeded:
    client: Any
    engine: Engine
    elasticsearch: Any
    index: str | None
    head: int


@pytest.fixture(params=["sqlite", "postgresql", "elasticsearch"])
def seeded(request, tmp_path) -> Iterator[Seeded]:
    """The app on one backend with the seeded history applied to its read models."""
    env = {"COHORTLINE_API_KEYS": KEYS, "COHORTLINE_RATE_LIMIT": "off"}
    index = None
    if request.param == "postgresql":
        env["COHORTLINE_DATABASE_URL"] = request.getfixturevalue("pg_url")
    else:
        env["COHORTLINE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fuzz.db'}"
    if request.param == "elasticsearch":
        index = services.unique_name("cohortline-test-fuzz")
        env["COHORTLINE_ELASTICSEARCH_URL"] = request.getfixturevalue("service_urls").elasticsearch
        env["COHORTLINE_ELASTICSEARCH_INDEX"] = index
    system = build_system(load_settings(env))
    try:
        assert system.backends["search"] == request.param
        client = create_app(system.api_context()).test_client()
        created = client.post("/v1/events", json={"events": history()}, headers=PRODUCER)
        assert created.status_code == 201, created.json
        LocalFollower(LogReader(system.event_store), system.runners).catch_up()
        if index is not None:
            system.elasticsearch.indices.refresh(index=index)
        yield Seeded(client, system.engine, system.elasticsearch, index, created.json["last_position"])
    finally:
        if index is not None:
            services.delete_index(env["COHORTLINE_ELASTICSEARCH_URL"], index)
        system.close()


def snapshot(seeded: Seeded) -> dict[str, int]:
    """Every table with its row count, and the search index's document count."""
    with seeded.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        counts = {
            name: conn.execute(select(func.count()).select_from(table(name))).scalar() for name in names
        }
    if seeded.index is not None:
        seeded.elasticsearch.indices.refresh(index=seeded.index)
        counts["elasticsearch"] = seeded.elasticsearch.count(index=seeded.index)["count"]
    return counts


def get(seeded: Seeded, path: str, **params: Any) -> Any:
    answer = seeded.client.get(path, query_string=params, headers=ADMIN)
    assert answer.status_code < 500, (path, params, answer.status_code, answer.get_data(as_text=True))
    return answer


def error_code(answer: Any) -> str | None:
    body = answer.get_json(silent=True)
    return body["error"]["code"] if isinstance(body, dict) and "error" in body else None


def found(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.json
    return [user["user_id"] for user in answer.json["users"]]


def prefix_matches(q: str) -> list[str]:
    return [user for user in IN_ORDER if fold(user).startswith(fold(q))]


def valid_q(q: str) -> bool:
    return 1 <= len(q) <= 128 and "\x00" not in q


def test_search_and_cursors_take_payloads_as_text(seeded):
    before = snapshot(seeded)
    assert found(get(seeded, "/v1/users/search", size=100)) == IN_ORDER
    for q, users in {
        "A_": ["a_b"],
        "a%": ["a%b"],
        "ADA": ["ADA-2", "ada"],
        "x' OR": ["x' OR 1=1 --"],
    }.items():
        assert prefix_matches(q) == users, q
        assert found(get(seeded, "/v1/users/search", q=q)) == users, q

    def search(q: str) -> None:
        answer = get(seeded, "/v1/users/search", q=q, size=100)
        if valid_q(q):
            assert found(answer) == prefix_matches(q), repr(q)
        else:
            assert (answer.status_code, error_code(answer)) == (400, "invalid_parameter"), repr(q)

    def arbitrary_cursor(after: str) -> None:
        answer = get(seeded, "/v1/users/search", after=after)
        try:
            decode_cursor(after)
        except InvalidCursor:
            expected = "invalid_parameter" if after == "" else "invalid_cursor"
            assert (answer.status_code, error_code(answer)) == (400, expected), repr(after)

    def cursor_holding(ms: int | None, user_id: str) -> None:
        answer = get(seeded, "/v1/users/search", after=encode_cursor(SortKey(ms, user_id)), size=100)
        if not valid_q(user_id):
            assert (answer.status_code, error_code(answer)) == (400, "invalid_cursor"), repr(user_id)
            return
        key = (ms is None, -ms if ms is not None else 0, user_id)
        assert found(answer) == [u for u in IN_ORDER if sort_key(u) > key], (ms, repr(user_id))

    audit_after = TypeAdapter(Annotated[int, Field(ge=0, le=POSITION_MAX)])

    def audit_log_after(after: str) -> None:
        answer = get(seeded, "/v1/audit/log", after=after)
        try:
            position = audit_after.validate_python(after)
        except ValidationError:
            assert (answer.status_code, error_code(answer)) == (400, "invalid_parameter"), repr(after)
            assert answer.json["error"]["details"][0]["field"] == "after"
            return
        positions = [e["position"] for e in answer.json["events"]]
        assert positions == list(range(position + 1, seeded.head + 1)), repr(after)

    times = [last_active_ms(user) for user in ACTIVE]
    for payload in CLASSIC:
        search(payload)
        arbitrary_cursor(payload)
        cursor_holding(times[0], payload)
        audit_log_after(payload)
    for user in IN_ORDER:
        search(user)
        cursor_holding(last_active_ms(user), user)
    moments = st.none() | st.sampled_from(times) | st.integers(min(times) - 1, max(times) + 1)

    @FUZZ
    @given(q=GENERATED | SEEDED_PREFIXES, ms=moments, position=st.integers(-1, seeded.head + 1))
    def generated(q: str, ms: int | None, position: int) -> None:
        search(q)
        arbitrary_cursor(q)
        cursor_holding(ms, q)
        audit_log_after(q)
        audit_log_after(str(position))

    generated()
    for raw in ("q=%", "q=%E0%A4", "q=%25%", "after=%", "q=a&q=b", "q=%ZZ"):
        answer = seeded.client.get(f"/v1/users/search?{raw}", headers=ADMIN)
        assert answer.status_code in (200, 400), (raw, answer.status_code)
    assert snapshot(seeded) == before


def in_path(value: str) -> str:
    return quote(value, safe="")


def routed(value: str, converter: str = "default") -> bool:
    """Whether a path segment of `value` reaches its route: the default converter takes no '/'
    and the `text` one takes any key but NUL (api.converters); no segment is empty. Routing answers
    the others (404, or 405)."""
    if converter == "text":
        return value != "" and "\x00" not in value
    return value != "" and "/" not in value


KNOWN_FEATURES = {f"tool:{tool}" for tool in TOOLS.values()} | {f"scene:{SCENE}"}
FROM_TO = {"from": "2025-03-01", "to": "2025-03-31"}
SHADOWED = {"search"}
"""What /v1/users/<user_id> cannot name: /v1/users/search is the search."""


@pytest.mark.parametrize("seeded", ["sqlite", "postgresql"], indirect=True)
def test_path_parameters_take_payloads_as_names(seeded):
    before = snapshot(seeded)
    app = seeded.client.application
    static = Path(app.blueprints["dashboard"].static_folder).resolve()
    projections = app.config["COHORTLINE"].projections
    users = set(STREAMS["user"])

    def refused(answer: Any, *codes: str) -> bool:
        """Refused for one of `codes`; "not_found" also stands for what routing answers a path that
        leads nowhere: 404, or 405 for a route without the method."""
        if "not_found" in codes:
            codes = (*codes, "method_not_allowed")
        return answer.status_code in (400, 404, 405, 422) and error_code(answer) in codes

    def names(value: str) -> None:
        segment = in_path(value)
        where = repr(value)

        answer = get(seeded, f"/v1/users/{segment}")
        if value in SHADOWED:
            pass
        elif routed(value, "text") and value in users:
            assert answer.json["user_id"] == value, where
        else:
            assert refused(answer, "user_not_found", "not_found"), where

        answer = get(seeded, f"/v1/campaigns/{segment}/effect")
        if routed(value, "text") and value == CAMPAIGN:
            assert answer.json["campaign"]["campaign_id"] == CAMPAIGN, where
        else:
            assert refused(answer, "campaign_not_found", "not_found"), where

        for kind, keys in STREAMS.items():
            events = get(seeded, f"/v1/audit/streams/{kind}/{segment}/events")
            state = get(seeded, f"/v1/audit/streams/{kind}/{segment}/state")
            if routed(value, "text") and value in keys:
                assert events.status_code == 200 and events.json["events"], (kind, where)
                assert state.json["key"] == value, (kind, where)
            else:
                assert refused(events, "stream_not_found", "not_found"), (kind, where)
                assert refused(state, "stream_not_found", "not_found"), (kind, where)
        if value not in STREAMS:
            kind_answer = get(seeded, f"/v1/audit/streams/{segment}/ada/events")
            assert refused(kind_answer, "unknown_stream_kind", "not_found"), where

        for feature in (value, f"tool:{value}", f"scene:{value}"):
            answer = get(seeded, f"/v1/features/{in_path(feature)}/impact", **FROM_TO)
            if not routed(feature, "text"):
                assert refused(answer, "not_found"), (feature, answer.json)
            elif re.fullmatch(FEATURE, feature) is None:
                assert refused(answer, "invalid_parameter"), (feature, answer.json)
            elif feature in KNOWN_FEATURES:
                assert answer.json["feature"] == feature, where
            else:
                assert refused(answer, "unknown_feature"), (feature, answer.json)

        answer = get(seeded, f"/v1/admin/projections/{segment}")
        if routed(value) and value in (*projections, "verify"):
            assert answer.status_code == 200, where
        else:
            assert refused(answer, "projection_not_found", "not_found"), where
        if value not in users:
            erased = seeded.client.post(f"/v1/admin/users/{segment}/erase", headers=ADMIN)
            assert refused(erased, "user_not_found", "not_found"), where
        if value not in projections:
            rebuilt = seeded.client.post(f"/v1/admin/projections/{segment}/rebuild", headers=ADMIN)
            assert refused(rebuilt, "projection_not_found", "not_found"), where

        page = get(seeded, f"/users/{segment}")
        if routed(value, "text"):
            assert page.status_code == 302 and page.headers["Location"].startswith("/sign-in?next=/users/")
        language = get(seeded, f"/language/{segment}")
        assert language.status_code == (302 if value in LANGUAGES else 404), where
        asset = get(seeded, f"/assets/{segment}")
        if asset.status_code == 200:
            served = (static / value).resolve()
            assert served.is_relative_to(static) and served.read_bytes() == asset.data, where
        else:
            assert refused(asset, "not_found") or asset.status_code == 404, where
            assert urlsplit(asset.headers.get("Location", "/assets/")).path.startswith("/assets/"), where

    for value in (*CLASSIC, *users, ORDER, CAMPAIGN, TICKET, *TOOLS.values(), "dashboard.css"):
        names(value)

    @FUZZ
    @given(value=GENERATED)
    def generated(value: str) -> None:
        names(value)

    generated()
    for traversal in ("../../../../etc/passwd", "..%2F..%2Finfra%2Fcli.py", "%2e%2e/%2e%2e/infra/cli.py"):
        assert get(seeded, f"/assets/{traversal}").status_code == 404, traversal
    assert snapshot(seeded) == before
