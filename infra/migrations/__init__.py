"""Schema migrations: Alembic owns every table Cohortline creates (the event store's table with our
columns, indexes and triggers, the read models, tracking, dead letters, keys, relay position and
rebuild status). `cohortline migrate` upgrades; the services refuse a schema that is not current."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy_utils.types.uuid import UUIDType

from infra.database import SCHEMA_LOCK_KEY

MIGRATIONS_DIR = Path(__file__).parent
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this version of Cohortline needs."""

    def __init__(self, current: str | None, head: str):
        self.current = current
        self.head = head
        if current is None:
            problem = "the database has no Cohortline schema yet"
        else:
            problem = f"the database's schema is at revision {current}, this Cohortline needs {head}"
        super().__init__(f"{problem}: run `cohortline migrate` (with the same COHORTLINE_DATABASE_URL)")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `revision` in one transaction, one process at a time; returns the
    revisions before and after."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    assert after is not None
    return before, after


def replayed(before: str | None, after: str) -> list[str]:
    """The projections whose read models a revision in (before, after] emptied because their shape
    changed (its `REPLAYS`): they must be replayed from the log."""
    script = ScriptDirectory.from_config(alembic_config())
    names: set[str] = set()
    for revision in script.iterate_revisions(after, before):
        names.update(getattr(revision.module, "REPLAYS", ()))
    return sorted(names)


def check_current(engine: Engine) -> None:
    """SchemaNotCurrent unless the database is at this code's head revision."""
    found, wanted = current(engine), head()
    if found != wanted:
        raise SchemaNotCurrent(found, wanted)


def differences(engine: Engine) -> list[object]:
    """What the database's schema lacks or has beyond the tables the code declares (empty when
    the migrations and the code agree)."""
    from alembic.autogenerate import compare_metadata

    from infra.schema import ALL_METADATA

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": compare_type})
        return [d for d in compare_metadata(context, list(ALL_METADATA)) if not _is_alembic_version(d)]


def compare_type(
    _context: object, _reflected_column: object, _declared_column: object, _reflected: Any, declared: Any
) -> bool | None:
    """The library's UUID type reflects as whatever SQLite stores it as: not a difference."""
    if isinstance(declared, UUIDType):
        return False
    return None


def _is_alembic_version(difference: object) -> bool:
    return isinstance(difference, tuple) and getattr(difference[1], "name", None) == "alembic_version"


def empty_for_replay(projection: str, tables: Sequence[str]) -> None:
    """Inside a revision: empty a projection's read models and its positions, dead letters and
    halts, so that it replays the log into the new shape (the revision lists it in `REPLAYS`)."""
    import sqlalchemy as sa
    from alembic import op

    for table in tables:
        op.execute(sa.table(table).delete())
    for table in ("projection_tracking", "projection_dead_letters", "projection_halts"):
        op.execute(
            sa.table(table, sa.column("projection")).delete().where(sa.column("projection") == projection)
        )
