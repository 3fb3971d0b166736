"""Tamper evidence whatever a stored row holds, on both storages: a value of another type, no value,
changed bytes, a changed position, a removed or reordered row all make `GET /v1/audit/verify` and
`cohortline audit verify` report the chain broken at the row altered, never fail."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, Engine, text

from tests.integration.test_append_http import every_type, post
from tests.integration.test_audit_http import AUDITOR
from tests.integration.test_operator_cli import cohortline

EVENTS = "cohortline_events"
P = 5
"""The position altered, in the middle of the log."""

Tamper = Callable[[Connection, str], tuple[int, str]]
"""Alters the stored log on a dialect; answers where verify must find it broken and a fragment of
the reason it must give."""


def state_as_text(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"state = state || x'00' WHERE id = {P}")  # SQLite's || answers TEXT
        return P, "state is TEXT, not bytes"
    alter(conn, "state TYPE text USING encode(state, 'escape')")  # every row: 1 is the first altered
    return 1, "state is TEXT, not bytes"


def last_state_as_text(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        head = conn.execute(text(f"SELECT max(id) FROM {EVENTS}")).scalar_one()
        update(conn, f"state = state || x'00' WHERE id = {head}")
        return head, "state is TEXT, not bytes"
    return state_as_text(conn, dialect)


def state_as_text_not_utf8(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"state = state || x'ff' WHERE id = {P}")
    return P, "state is TEXT that is not UTF-8"


def state_as_integer(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"state = 12345 WHERE id = {P}")
        return P, "state is an INTEGER"
    alter(conn, "state TYPE bigint USING length(state)")
    return 1, "state is an INTEGER"


def state_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    allow_null(conn, dialect, "state")
    update(conn, f"state = NULL WHERE id = {P}")
    return P, "state is missing"


def stream_id_as_text(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"originator_id = 'not a uuid' WHERE id = {P}")
        return P, "stream id is TEXT"
    alter(
        conn,
        f"originator_id TYPE text USING CASE WHEN id = {P} THEN 'not a uuid' ELSE originator_id::text END",
    )
    return P, "stream id is not a UUID"


def stream_id_truncated(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"originator_id = substr(originator_id, 1, 15) WHERE id = {P}")
        return P, "stream id is 15 bytes"
    alter(
        conn,
        "originator_id TYPE text USING "
        f"CASE WHEN id = {P} THEN left(originator_id::text, 35) ELSE originator_id::text END",
    )
    return P, "stream id is not a UUID"


def stream_id_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    allow_null(conn, dialect, "originator_id")
    update(conn, f"originator_id = NULL WHERE id = {P}")
    return P, "stream id is missing"


def version_as_text(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"originator_version = 'one' WHERE id = {P}")
        return P, "version is TEXT"
    alter(
        conn,
        f"originator_version TYPE text USING CASE WHEN id = {P} THEN 'one' ELSE originator_version::text END",
    )
    return 1, "version is TEXT"


def version_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    allow_null(conn, dialect, "originator_version")
    update(conn, f"originator_version = NULL WHERE id = {P}")
    return P, "version is missing"


def topic_as_blob(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"topic = CAST(topic AS BLOB) WHERE id = {P}")
        return P, "topic is a BLOB"
    alter(conn, "topic TYPE bytea USING convert_to(topic, 'UTF8')")
    return 1, "topic is a BLOB"


def topic_as_text_not_utf8(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"topic = CAST(x'ff' AS TEXT) WHERE id = {P}")
    return P, "topic is TEXT that is not UTF-8"


def topic_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    allow_null(conn, dialect, "topic")
    update(conn, f"topic = NULL WHERE id = {P}")
    return P, "topic is missing"


def event_id_as_blob(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"event_id = CAST(event_id AS BLOB) WHERE id = {P}")  # the same bytes
        return P, "id is a BLOB"
    alter(conn, "event_id TYPE bytea USING uuid_send(event_id)")  # read as text, it is another id
    return 1, "hash"


def hash_as_blob(conn: Connection, dialect: str) -> tuple[int, str]:
    if dialect == "sqlite":
        update(conn, f"hash = CAST(hash AS BLOB) WHERE id = {P}")  # the same bytes
        return P, "hash is a BLOB"
    alter(conn, "hash TYPE bytea USING convert_to(hash, 'UTF8')")
    return 1, "hash is a BLOB"


MALFORMED: list[Tamper] = [
    state_as_text,
    last_state_as_text,
    state_as_integer,
    state_missing,
    stream_id_as_text,
    stream_id_truncated,
    stream_id_missing,
    version_as_text,
    version_missing,
    topic_as_blob,
    topic_missing,
    event_id_as_blob,
    hash_as_blob,
]


def state_truncated(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"state = substr(state, 1, length(state) - 1) WHERE id = {P}")
    return P, "hash"


def state_extended(conn: Connection, dialect: str) -> tuple[int, str]:
    extra = "x'20'" if dialect == "sqlite" else "'\\x20'::bytea"
    update(conn, f"state = {blob(dialect, f'state || {extra}')} WHERE id = {P}")
    return P, "hash"


def stream_id_changed(conn: Connection, dialect: str) -> tuple[int, str]:
    other = "randomblob(16)" if dialect == "sqlite" else "gen_random_uuid()"
    update(conn, f"originator_id = {other} WHERE id = {P}")
    return P, "hash"


def version_changed(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"originator_version = originator_version + 100 WHERE id = {P}")
    return P, "hash"


def topic_changed(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"topic = topic || 'x' WHERE id = {P}")
    return P, "hash"


def event_id_changed(conn: Connection, dialect: str) -> tuple[int, str]:
    other = "'00000000-0000-4000-8000-000000000000'"
    update(conn, f"event_id = {other if dialect == 'sqlite' else other + '::uuid'} WHERE id = {P}")
    return P, "hash"


def event_id_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"event_id = NULL WHERE id = {P}")
    return P, "hash"


def hash_missing(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"hash = NULL WHERE id = {P}")
    return P, "carries no hash"


def last_position_changed(conn: Connection, dialect: str) -> tuple[int, str]:
    head = conn.execute(text(f"SELECT max(id) FROM {EVENTS}")).scalar_one()
    update(conn, f"id = {head + 10} WHERE id = {head}")
    return head + 10, "hash"


def middle_position_moved_after_the_head(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"id = id + 1000 WHERE id = {P}")  # as if removed: the next one no longer follows
    return P + 1, "hash"


def middle_row_deleted(conn: Connection, dialect: str) -> tuple[int, str]:
    conn.execute(text(f"DELETE FROM {EVENTS} WHERE id = {P}"))
    return P + 1, "hash"


def rows_swapped(conn: Connection, dialect: str) -> tuple[int, str]:
    update(conn, f"id = -1 WHERE id = {P}")
    update(conn, f"id = {P} WHERE id = {P + 1}")
    update(conn, f"id = {P + 1} WHERE id = -1")
    return P, "hash"


ALTERED: list[Tamper] = [
    state_truncated,
    state_extended,
    stream_id_changed,
    version_changed,
    topic_changed,
    event_id_changed,
    event_id_missing,
    hash_missing,
    last_position_changed,
    middle_position_moved_after_the_head,
    middle_row_deleted,
    rows_swapped,
]


@pytest.fixture
def logged(client, system) -> None:
    assert post(client, every_type()).status_code == 201
    assert client.get("/v1/audit/verify", headers=AUDITOR).json["ok"] is True


@pytest.mark.parametrize("tamper", MALFORMED, ids=lambda t: t.__name__)
def test_a_value_of_another_type_or_none_breaks_the_chain_at_its_row(client, system, logged, tamper):
    position, reason = tampered(system.engine, tamper)
    assert_broken_at(client, system.engine, position, reason)


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # PostgreSQL refuses text not UTF-8
@pytest.mark.parametrize("tamper", [state_as_text_not_utf8, topic_as_text_not_utf8], ids=lambda t: t.__name__)
def test_text_that_is_not_utf8_breaks_the_chain_at_its_row(client, system, logged, tamper):
    position, reason = tampered(system.engine, tamper)
    assert_broken_at(client, system.engine, position, reason)


@pytest.mark.parametrize("tamper", ALTERED, ids=lambda t: t.__name__)
def test_altered_removed_or_reordered_rows_break_the_chain_where_altered(client, system, logged, tamper):
    position, reason = tampered(system.engine, tamper)
    assert_broken_at(client, system.engine, position, reason)


@pytest.mark.parametrize(
    "tamper", [state_as_text, last_state_as_text, stream_id_as_text, state_missing], ids=lambda t: t.__name__
)
def test_the_command_line_prints_the_broken_verdict_and_exits_1(system, logged, tamper):
    position, reason = tampered(system.engine, tamper)
    verified = cohortline(system, "audit", "verify")
    assert b"Traceback" not in verified.stderr, verified.stderr.decode()
    assert verified.returncode == 1
    verdict = json.loads(verified.stdout)
    assert verdict["ok"] is False and verdict["broken_at"] == position
    assert reason in verdict["reason"]


def tampered(engine: Engine, tamper: Tamper) -> tuple[int, str]:
    with unguarded(engine) as conn:
        return tamper(conn, engine.dialect.name)


def assert_broken_at(client, engine: Engine, position: int, reason: str) -> None:
    response = client.get("/v1/audit/verify", headers=AUDITOR)
    assert response.status_code == 200, response.json
    verdict = response.json
    assert verdict["ok"] is False and verdict["broken_at"] == position, verdict
    assert reason in verdict["reason"], verdict
    with engine.connect() as conn:
        before = conn.execute(text(f"SELECT count(*) FROM {EVENTS} WHERE id < {position}")).scalar_one()
    assert verdict["events"] == before


@contextmanager
def unguarded(engine: Engine) -> Iterator[Connection]:
    """A transaction past the append-only triggers, as someone with direct database access has."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {EVENTS} DISABLE TRIGGER USER"))
            yield conn
            conn.execute(text(f"ALTER TABLE {EVENTS} ENABLE TRIGGER USER"))
        else:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {EVENTS}_no_update"))
            conn.execute(text(f"DROP TRIGGER IF EXISTS {EVENTS}_no_delete"))
            yield conn


def update(conn: Connection, assignment: str) -> None:
    conn.execute(text(f"UPDATE {EVENTS} SET {assignment}"))


def alter(conn: Connection, change: str) -> None:
    """PostgreSQL: a column's type changes for every row at once."""
    conn.execute(text(f"ALTER TABLE {EVENTS} ALTER COLUMN {change}"))


def allow_null(conn: Connection, dialect: str, column: str) -> None:
    """Drop a column's NOT NULL; SQLite can only rebuild the table for that."""
    if dialect == "postgresql":
        alter(conn, f"{column} DROP NOT NULL")
        return
    create = conn.execute(
        text(f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{EVENTS}'")
    ).scalar_one()
    loose, changed = re.subn(rf"(\b{column} [\w()]+) NOT NULL", r"\1", create)
    assert changed == 1, create
    conn.execute(text(f"ALTER TABLE {EVENTS} RENAME TO tampered_events"))
    conn.execute(text(loose))
    conn.execute(text(f"INSERT INTO {EVENTS} SELECT * FROM tampered_events"))
    conn.execute(text("DROP TABLE tampered_events"))


def blob(dialect: str, expression: str) -> str:
    """SQLite's || answers TEXT; a tamperer keeping the type casts it back."""
    return f"CAST({expression} AS BLOB)" if dialect == "sqlite" else expression
