"""Alembic owns the schema: a store written before migrations existed upgrades with every event,
hash and number intact; the services refuse a schema that is behind; the migrations produce exactly
the tables the code declares."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import Engine, MetaData, func, select

from infra import migrations
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.database import create_database_engine
from infra.eventstore import events_table
from streams.local import LocalFollower
from tests.analytics_checks import assert_read_models_equal_reference
from tests.unit.factories import envelope

LEGACY = Path(__file__).parent.parent / "legacy"
LEGACY_EVENTS = 808
READ_MODEL_TABLES = (
    "rm_users",
    "rm_user_periods",
    "rm_period_counts",
    "rm_cohort_sizes",
    "rm_cohort_returns",
    "rm_cohort_last",
    "rm_orders",
    "projection_tracking",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def legacy_url(request, tmp_path) -> str:
    """A store written by the commits before migrations (tests/legacy/make_stores.py)."""
    if request.param == "sqlite":
        path = tmp_path / "legacy.db"
        shutil.copy(LEGACY / "b29415d.sqlite", path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("empty_pg_url")
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    with conn, conn.cursor() as cursor:
        cursor.execute((LEGACY / "b29415d.sql").read_text())
    conn.close()
    return url


def cohortline(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env.update(COHORTLINE_DATABASE_URL=url, COHORTLINE_API_KEYS="k:reader")
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def table_contents(engine: Engine, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Each read-model table's rows, of the given columns (default: all it has); cohort cells that
    count nobody are left out (the incremental projection keeps them, a replay does not make them),
    and so are those of a feature cohort or return (since 0007; the legacy stores have none)."""
    meta = MetaData()
    meta.reflect(engine, only=READ_MODEL_TABLES)
    contents = {}
    with engine.connect() as conn:
        for name in READ_MODEL_TABLES:
            table = meta.tables[name]
            wanted = (columns or {}).get(name, table.c.keys())
            rows = [tuple(row) for row in conn.execute(select(*(table.c[c] for c in wanted)))]
            if name.startswith("rm_cohort_"):
                rows = [r for r in rows if r[-1] != 0 and not any(":" in str(v) for v in r[:2])]
            contents[name] = sorted(rows)
    return contents


def feature_cohorts(engine: Engine) -> list[str]:
    meta = MetaData()
    meta.reflect(engine, only=("rm_cohort_sizes",))
    c = meta.tables["rm_cohort_sizes"].c
    with engine.connect() as conn:
        query = (
            select(c.definition).where(c.definition.like("%:%")).group_by(c.definition).order_by(c.definition)
        )
        return list(conn.execute(query).scalars())


def only(
    contents: dict[str, list[tuple]], columns: dict[str, list[str]], kept: dict[str, list[str]]
) -> dict[str, list[tuple]]:
    """`contents` (rows of `columns`) with only the `kept` columns of each table."""
    found = {}
    for name, rows in contents.items():
        places = [columns[name].index(c) for c in kept[name]]
        found[name] = sorted(tuple(row[p] for p in places) for row in rows)
    return found


def legacy_net_revenue(contents: dict[str, list[tuple]], columns: dict[str, list[str]]) -> dict[str, int]:
    """user → the net revenue the legacy store kept (one currency), of those with any payment."""
    user, net = columns["rm_users"].index("user_id"), columns["rm_users"].index("net_revenue")
    return {row[user]: row[net] for row in contents["rm_users"] if row[net] != 0}


def user_revenue_sums(engine: Engine) -> dict[str, int]:
    """user → their net revenue over every currency (the legacy histories have one), non-zero."""
    meta = MetaData()
    meta.reflect(engine, only=("rm_user_revenue",))
    revenue = meta.tables["rm_user_revenue"]
    with engine.connect() as conn:
        rows = conn.execute(select(revenue.c.user_id, func.sum(revenue.c.net)).group_by(revenue.c.user_id))
        return {user: int(net) for user, net in rows if net != 0}


def columns_of(engine: Engine) -> dict[str, list[str]]:
    meta = MetaData()
    meta.reflect(engine, only=READ_MODEL_TABLES)
    return {name: meta.tables[name].c.keys() for name in READ_MODEL_TABLES}


def stored_events(engine: Engine) -> list[tuple]:
    c = events_table.c
    query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state, c.event_id).order_by(c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_a_store_from_before_migrations_upgrades_with_every_event_hash_and_number_intact(legacy_url):
    engine = create_database_engine(legacy_url)
    events_before, numbers_before = stored_events(engine), table_contents(engine)
    columns_before = columns_of(engine)
    assert len(events_before) == LEGACY_EVENTS
    assert migrations.current(engine) is None

    done = cohortline(legacy_url, "migrate")
    assert done.returncode == 0, done.stderr
    assert f"schema upgraded from nothing to revision {migrations.head()}" in done.stdout
    assert (
        cohortline(legacy_url, "migrate").stdout.strip() == f"schema already at revision {migrations.head()}"
    )

    assert stored_events(engine) == events_before
    kept = {
        name: [c for c in columns if c in columns_of(engine)[name]]
        for name, columns in columns_before.items()
    }
    assert kept["rm_users"] == [c for c in columns_before["rm_users"] if c != "net_revenue"]  # 0006
    assert table_contents(engine, kept) == only(numbers_before, columns_before, kept)
    assert user_revenue_sums(engine) == legacy_net_revenue(numbers_before, columns_before)
    assert feature_cohorts(engine) == [
        "scene:content",
        "scene:shopping",
        "scene:social",
        "tool:check_in",
        "tool:coupon_center",
        "tool:price_alert",
        "tool:wishlist",
    ]  # replayed (0007)
    assert migrations.differences(engine) == []
    engine.dispose()

    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": legacy_url}))
    try:
        verdict = system.audit.verify()
        assert verdict.ok, verdict
        assert verdict.events == LEGACY_EVENTS
        sealed = [e for e in system.audit.log(0, LEGACY_EVENTS) if e.fact.type_name() == "UserProfileUpdated"]
        assert sealed and all(e.fact.data["attributes"]["city"] == "Leeds" for e in sealed)

        system.event_store.record([envelope("SessionStarted", user_id="after-upgrade", platform="web")])
        LocalFollower(system.log_reader(), system.runners).catch_up()
        assert system.audit.verify().ok
        everything = system.log_reader().read(0, 10_000)
        assert len(everything) == LEGACY_EVENTS + 1
        assert_read_models_equal_reference(system.engine, everything, date(2025, 3, 1), date(2025, 4, 30))
    finally:
        system.close()


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["relay"], ["worker"], ["audit", "verify"]])
def test_services_refuse_a_schema_that_is_behind_and_say_what_to_run(empty_pg_url, service_urls, command):
    env_url = empty_pg_url
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *command],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")},
            "COHORTLINE_DATABASE_URL": env_url,
            "COHORTLINE_KAFKA_URL": service_urls.kafka,
            "COHORTLINE_API_KEYS": "k:reader",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "run `cohortline migrate`" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_schema_behind_by_one_revision_is_named(empty_pg_url):
    engine = create_database_engine(empty_pg_url)
    migrations.upgrade(engine, "0001")
    with pytest.raises(migrations.SchemaNotCurrent, match="at revision 0001"):
        migrations.check_current(engine)
    migrations.upgrade(engine)
    migrations.check_current(engine)
    engine.dispose()


def test_the_embedded_default_migrates_itself(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": url}))
    try:
        assert migrations.current(system.engine) == migrations.head()
        assert migrations.differences(system.engine) == []
    finally:
        system.close()


def test_migrations_on_postgresql_produce_the_declared_schema(pg_url):
    engine = create_database_engine(pg_url)
    assert migrations.current(engine) == migrations.head()
    assert migrations.differences(engine) == []
    engine.dispose()
