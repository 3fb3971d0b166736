"""Hash the events stored before the hash chain existed.

Stores older than the chain hold events without a hash, and the events appended after it were
linked to that missing hash. From the first event without a hash to the head, every event is hashed
again in log order (infra.chain), so `audit verify` passes on an upgraded store. Events before the
first unhashed one keep their hashes. The append-only triggers are lifted for this transaction
only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy_utils.types.uuid import UUIDType

from infra.chain import GENESIS, chain_hash

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENTS = "cohortline_events"
PAGE = 2000

events = sa.Table(
    EVENTS,
    sa.MetaData(),
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("originator_id", UUIDType()),
    sa.Column("originator_version", sa.BigInteger()),
    sa.Column("topic", sa.Text()),
    sa.Column("state", sa.LargeBinary()),
    sa.Column("event_id", sa.Text().with_variant(UUID(as_uuid=False), "postgresql")),
    sa.Column("hash", sa.Text().with_variant(sa.CHAR(64), "postgresql")),
)


def upgrade() -> None:
    conn = op.get_bind()
    first = conn.execute(sa.select(sa.func.min(events.c.id)).where(events.c.hash.is_(None))).scalar()
    if first is None:
        return
    previous = conn.execute(
        sa.select(events.c.hash).where(events.c.id < first).order_by(events.c.id.desc()).limit(1)
    ).scalar()
    with _triggers_lifted(conn):
        _rehash_from(conn, first, previous or GENESIS)


def _rehash_from(conn: sa.Connection, first: int, previous: str) -> None:
    update = (
        events.update().where(events.c.id == sa.bindparam("position")).values(hash=sa.bindparam("new_hash"))
    )
    for page in _pages(conn, first):
        changes = []
        for row in page:
            previous = chain_hash(
                previous,
                row.id,
                str(row.originator_id),
                row.originator_version,
                row.topic,
                bytes(row.state),
                str(row.event_id) if row.event_id is not None else None,
            )
            changes.append({"position": row.id, "new_hash": previous})
        conn.execute(update, changes)


def _pages(conn: sa.Connection, first: int) -> Iterator[list[sa.Row]]:
    after = first - 1
    while True:
        page = list(
            conn.execute(sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(PAGE))
        )
        if not page:
            return
        yield page
        after = page[-1].id


@contextmanager
def _triggers_lifted(conn: sa.Connection) -> Iterator[None]:
    """The append-only UPDATE trigger off inside this transaction (PostgreSQL's DDL is
    transactional; SQLite's trigger is dropped and made again in the same transaction)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {EVENTS} DISABLE TRIGGER {EVENTS}_append_only")
        yield
        conn.exec_driver_sql(f"ALTER TABLE {EVENTS} ENABLE TRIGGER {EVENTS}_append_only")
        return
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {EVENTS}_no_update")
    yield
    conn.exec_driver_sql(
        f"CREATE TRIGGER {EVENTS}_no_update BEFORE UPDATE ON {EVENTS} "
        f"BEGIN SELECT RAISE(ABORT, '{EVENTS} is append-only: UPDATE refused'); END"
    )


def downgrade() -> None:
    """Hashes stay: they are what `audit verify` checks."""
