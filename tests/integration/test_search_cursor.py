"""One cursor for the user search on SQLite, PostgreSQL and Elasticsearch: paging gives every user
exactly once, in the same order on each, and a cursor written by one backend continues on another;
anything but a cursor the search wrote is a 400 `invalid_cursor` naming `after`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from api.app import create_app
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.demo import demo_events
from projections.cursors import SORT, InvalidCursor, SortKey, decode_cursor, encode_cursor
from projections.search import UserQuery
from streams.local import LocalFollower
from streams.log_reader import LogReader
from tests import services
from tests.integration.conftest import KEYS
from tests.integration.search_backends import every_page, in_order, open_backends, user_row
from tests.integration.test_append_http import PRODUCER

READER = {"Authorization": "Bearer read"}
AT = datetime(2025, 5, 4, 15, 30, 45, 123456, tzinfo=UTC)
US, MS = timedelta(microseconds=1), timedelta(milliseconds=1)


@pytest.fixture
def backends(tmp_path, pg_url, service_urls):
    with open_backends(tmp_path, pg_url, service_urls.elasticsearch) as opened:
        yield opened


def crowd() -> list[dict]:
    """Users who tie on last activity to the millisecond but not the microsecond, users never
    active, and ids that sort differently by case, accent and collation."""
    ids = ["a", "B", "b", "é", "É", "z", "Z", "a-1", "a_1", "a1", "10", "9", "ß", "ss", "日本", "Ω"]
    rows = []
    for n, user_id in enumerate(ids):
        for k, at in enumerate((AT, AT + (n % 4) * US, AT - MS + (n % 3) * 300 * US, None)):
            rows.append(user_row(f"{user_id}.{k}", AT - timedelta(days=3), last_active_at=at, country="GB"))
    rows += [
        user_row(f"old-{n}", AT, last_active_at=datetime(1960, 1, 1, tzinfo=UTC) + n * US) for n in range(3)
    ]
    return rows


@pytest.mark.parametrize("size", [1, 3, 10, 100])
def test_paging_gives_every_user_once_in_the_same_order_on_every_backend(backends, size):
    rows = crowd()
    backends.load(rows)
    want = in_order(rows)
    assert len(set(want)) == len(rows)
    for backend, search in backends.searches.items():
        assert every_page(search, UserQuery(size=size)) == want, backend
        assert every_page(search, UserQuery(q="A", size=size)) == [u for u in want if u[0] in "aA"], backend


def test_a_cursor_from_one_backend_continues_on_another(backends):
    rows = crowd()
    backends.load(rows)
    searches = list(backends.searches.values())
    for first in range(3):
        found, after, n = [], None, first
        while True:
            page = searches[n % 3].search(UserQuery(size=4, after=after))
            found += [u["user_id"] for u in page.users]
            after, n = page.next, n + 1
            if after is None:
                break
        assert found == in_order(rows)


def test_a_cursor_is_opaque_url_safe_and_decodes_to_the_sort_key():
    key = SortKey(1746372645123, "Zoë/+= &?")
    cursor = encode_cursor(key)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == key
    assert json.loads(base64.urlsafe_b64decode(cursor + "==")) == {
        "v": 1,
        "sort": SORT,
        "key": [1746372645123, "Zoë/+= &?"],
    }
    assert decode_cursor(encode_cursor(SortKey(None, "u"))) == SortKey(None, "u")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def cursor_of(payload: object) -> str:
    return b64(json.dumps(payload).encode())


GOOD = {"v": 1, "sort": SORT, "key": [1746372645123, "u1"]}


def non_canonical(cursor: str) -> str:
    """The same bytes with other (ignored) padding bits: a cursor the search never writes."""
    raw = base64.urlsafe_b64decode(cursor + "==")
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        changed = cursor[:-1] + c
        if changed != cursor and base64.urlsafe_b64decode(changed + "==") == raw:
            return changed
    raise AssertionError("no other padding bits")


def raw_cursor(fields: str) -> str:
    """A cursor of the JSON text `{"sort": SORT, <fields>}`, for what json.dumps would not write."""
    return b64(('{"sort": ' + json.dumps(SORT) + ", " + fields + "}").encode())


MALFORMED = {
    "not base64": "!!!!",
    "standard base64": "ab+/",
    "padded": cursor_of({**GOOD, "key": [1, "u"]}) + "=",
    "impossible length": "abcde",
    "other padding bits": non_canonical(cursor_of({**GOOD, "key": [1, "u12"]})),
    "not UTF-8": b64(b"\xff\xfe\xfd"),
    "not JSON": b64(b"hello"),
    "the old format": cursor_of(["2025-05-04T10:00:00", "u1"]),
    "null": cursor_of(None),
    "no version": cursor_of({"sort": SORT, "key": GOOD["key"]}),
    "an extra field": cursor_of({**GOOD, "hmac": "x"}),
    "version 2": cursor_of({**GOOD, "v": 2}),
    "version as text": cursor_of({**GOOD, "v": "1"}),
    "version true": cursor_of({**GOOD, "v": True}),
    "version 1.0": cursor_of({**GOOD, "v": 1.0}),
    "another sort": cursor_of({**GOOD, "sort": "last_active_at,user_id"}),
    "no sort": cursor_of({"v": 1, "sort": None, "key": GOOD["key"]}),
    "key not a list": cursor_of({**GOOD, "key": {"at": 1, "id": "u"}}),
    "key of three": cursor_of({**GOOD, "key": [1, "u", 3]}),
    "time as text": cursor_of({**GOOD, "key": ["2025-05-04T10:00:00Z", "u1"]}),
    "time as a fraction": cursor_of({**GOOD, "key": [1.5, "u1"]}),
    "time as a boolean": cursor_of({**GOOD, "key": [True, "u1"]}),
    "time after year 9999": cursor_of({**GOOD, "key": [10**20, "u1"]}),
    "time before year 1": cursor_of({**GOOD, "key": [-(10**20), "u1"]}),
    "id a number": cursor_of({**GOOD, "key": [1, 5]}),
    "id null": cursor_of({**GOOD, "key": [1, None]}),
    "id empty": cursor_of({**GOOD, "key": [1, ""]}),
    "id too long": cursor_of({**GOOD, "key": [1, "u" * 129]}),
    "id with NUL": cursor_of({**GOOD, "key": [1, "a\u0000b"]}),
    "id a lone surrogate": raw_cursor('"v": 1, "key": [1, "\\ud800"]'),
    "a repeated field": raw_cursor('"v": 2, "v": 1, "key": [1, "u"]'),
    "NaN": raw_cursor('"v": 1, "key": [NaN, "u"]'),
    "too long": "A" * 4000,
}


def test_the_malformed_cursors_are_what_they_say():
    assert decode_cursor(cursor_of(GOOD)) == SortKey(1746372645123, "u1")
    for name, cursor in MALFORMED.items():
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)
            pytest.fail(name)


def test_every_backend_refuses_a_malformed_cursor_before_asking(backends):
    backends.load(crowd()[:5])
    for backend, search in backends.searches.items():
        for name, cursor in MALFORMED.items():
            with pytest.raises(InvalidCursor):
                search.search(UserQuery(after=cursor))
                pytest.fail(f"{backend}: {name}")


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_cursor_is_a_400_naming_after(client, name):
    response = client.get("/v1/users/search", query_string={"after": MALFORMED[name]}, headers=READER)
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_cursor"
    assert error["details"][0]["field"] == "after"
    assert error["message"].startswith("after: ")


def test_a_well_formed_cursor_past_every_user_gives_an_empty_last_page(client):
    cursor = encode_cursor(SortKey(None, "\U0010ffff"))
    response = client.get("/v1/users/search", query_string={"after": cursor}, headers=READER)
    assert response.status_code == 200
    assert response.json["users"] == [] and response.json["next"] is None


def search_over_http(settings: dict[str, str]) -> list[str]:
    """Every user of the demo history, paged through GET /v1/users/search with `settings`."""
    system = build_system(load_settings({**settings, "COHORTLINE_API_KEYS": KEYS}))
    try:
        client = create_app(system.api_context()).test_client()
        raw = demo_events()
        for start in range(0, len(raw), 1000):
            response = client.post("/v1/events", json={"events": raw[start : start + 1000]}, headers=PRODUCER)
            assert response.status_code == 201
        LocalFollower(LogReader(system.event_store), system.runners).catch_up()
        if system.elasticsearch is not None:
            system.elasticsearch.indices.refresh(index=settings["COHORTLINE_ELASTICSEARCH_INDEX"])
        found, after = [], None
        while True:
            params = {"size": 37, **({"after": after} if after else {})}
            body = client.get("/v1/users/search", query_string=params, headers=READER).json
            found += [u["user_id"] for u in body["users"]]
            after = body["next"]
            if after is None:
                return found
    finally:
        system.close()


def test_paging_over_http_is_the_same_on_sqlite_postgresql_and_elasticsearch(tmp_path, pg_url, service_urls):
    index = services.unique_name("cohortline-test-users")
    try:
        on_sqlite = search_over_http({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})
        on_postgresql = search_over_http({"COHORTLINE_DATABASE_URL": pg_url})
        on_elasticsearch = search_over_http(
            {
                "COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                "COHORTLINE_ELASTICSEARCH_URL": service_urls.elasticsearch,
                "COHORTLINE_ELASTICSEARCH_INDEX": index,
            }
        )
    finally:
        services.delete_index(service_urls.elasticsearch, index)
    assert (
        len(on_sqlite)
        == len(set(on_sqlite))
        == len({e["user_id"] for e in demo_events() if e.get("user_id")})
    )
    assert on_postgresql == on_sqlite
    assert on_elasticsearch == on_sqlite
