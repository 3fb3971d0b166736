"""Baseline: every table as Cohortline created it before migrations existed.

Stores made by earlier versions already hold some or all of it, so this revision creates what is
missing and leaves what exists: a table absent is created, a column absent is added (nullable, as
existing rows have no value), an index or trigger absent is created.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy_utils.types.uuid import UUIDType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EVENTS = "cohortline_events"
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    def cells(name: str, offset: str | None) -> sa.Table:
        keyed = [sa.Column("returns", sa.String(8), primary_key=True)] if offset else []
        offsets = [sa.Column(offset, sa.Integer, primary_key=True, autoincrement=False)] if offset else []
        return sa.Table(
            name,
            meta,
            sa.Column("definition", sa.String(12), primary_key=True),
            *keyed,
            sa.Column("granularity", sa.String(5), primary_key=True),
            sa.Column("cohort", sa.Date, primary_key=True),
            *offsets,
            sa.Column("channel", sa.String(64), primary_key=True),
            sa.Column("country", sa.String(2), primary_key=True),
            sa.Column("users", sa.Integer, nullable=False),
        )

    return [
        sa.Table(
            EVENTS,
            meta,
            sa.Column("id", BIG, primary_key=True, autoincrement=True),
            sa.Column("originator_id", UUIDType(), nullable=False),
            sa.Column("originator_version", BIG, nullable=False),
            sa.Column("topic", sa.Text(), nullable=False),
            sa.Column("state", sa.LargeBinary(), nullable=False),
            sa.Column("event_id", sa.Text().with_variant(UUID(as_uuid=False), "postgresql")),
            sa.Column("hash", sa.Text().with_variant(sa.CHAR(64), "postgresql")),
            sa.Index(f"{EVENTS}_aggregate_idx", "originator_id", "originator_version", unique=True),
            sa.Index(f"{EVENTS}_event_id", "event_id", unique=True),
        ),
        sa.Table(
            "rm_users",
            meta,
            sa.Column("user_id", sa.String(128), primary_key=True),
            sa.Column("first_seen_at", sa.DateTime(), nullable=False),
            sa.Column("signup_at", sa.DateTime()),
            sa.Column("first_order_at", sa.DateTime()),
            sa.Column("last_active_at", sa.DateTime()),
            sa.Column("last_order_at", sa.DateTime()),
            sa.Column("orders", sa.Integer, nullable=False),
            sa.Column("net_revenue", sa.BigInteger, nullable=False),
            sa.Column("points", sa.BigInteger, nullable=False),
            sa.Column("open_tickets", sa.Integer, nullable=False),
            sa.Column("country", sa.String(2)),
            sa.Column("country_key", sa.String(48)),
            sa.Column("channel", sa.String(64)),
            sa.Column("channel_key", sa.String(48)),
            sa.Column("first_country", sa.String(2)),
            sa.Column("first_country_key", sa.String(48)),
            sa.Column("tier", sa.String(64)),
            sa.Column("tier_key", sa.String(48)),
            sa.Column("resurrected_on", sa.Date()),
            sa.Column("last_position", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "rm_user_periods",
            meta,
            sa.Column("user_id", sa.String(128), primary_key=True),
            sa.Column("kind", sa.String(80), primary_key=True),
            sa.Column("granularity", sa.String(5), primary_key=True),
            sa.Column("period", sa.Date, primary_key=True),
            sa.Column("prev_period", sa.Date, nullable=False),
            sa.Column("next_period", sa.Date, nullable=False),
            sa.Column("days", sa.Integer, nullable=False),
            sa.Index("rm_user_periods_by_period", "kind", "granularity", "period"),
        ),
        sa.Table(
            "rm_period_counts",
            meta,
            sa.Column("kind", sa.String(80), primary_key=True),
            sa.Column("granularity", sa.String(5), primary_key=True),
            sa.Column("period", sa.Date, primary_key=True),
            sa.Column("users", sa.Integer, nullable=False),
        ),
        cells("rm_cohort_sizes", None),
        cells("rm_cohort_returns", "offset"),
        cells("rm_cohort_last", "last_offset"),
        sa.Table(
            "rm_orders",
            meta,
            sa.Column("order_id", sa.String(128), primary_key=True),
            sa.Column("user_id", sa.String(128), nullable=False),
            sa.Column("placed_at", sa.DateTime(), nullable=False),
            sa.Index("rm_orders_by_time", "placed_at", "user_id"),
        ),
        sa.Table(
            "projection_tracking",
            meta,
            sa.Column("projection", sa.String(32), primary_key=True),
            sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.Column("kafka_offset", sa.BigInteger, nullable=True),
            sa.Column("watermark", sa.DateTime(), nullable=True),
        ),
        sa.Table(
            "projection_dead_letters",
            meta,
            sa.Column("id", BIG, primary_key=True, autoincrement=True),
            sa.Column("projection", sa.String(32), nullable=False),
            sa.Column("partition", sa.Integer, nullable=False),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.Column("kafka_offset", sa.BigInteger),
            sa.Column("event_id", sa.String(64)),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("payload", sa.Text),
            sa.Column("failed_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint(
                "projection", "partition", "kafka_offset", "position", name="uq_dead_letter_source"
            ),
        ),
        sa.Table(
            "relay_position",
            meta,
            sa.Column("topic", sa.String(255), primary_key=True),
            sa.Column("position", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "cohortline_user_keys",
            meta,
            sa.Column("user_id", sa.String(128), primary_key=True),
            sa.Column("key", sa.LargeBinary, nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("destroyed_at", sa.DateTime(), nullable=True),
        ),
        sa.Table(
            "projection_rebuilds",
            meta,
            sa.Column("projection", sa.String(32), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.Column("target", sa.BigInteger, nullable=False),
            sa.Column("events_per_s", sa.Float, nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("finished_at", sa.DateTime()),
            sa.Column("error", sa.Text),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    for table in _tables(sa.MetaData()):
        inspector = sa.inspect(bind)
        if not inspector.has_table(table.name):
            table.create(bind)
            continue
        _add_missing_columns(inspector, table)
        _add_missing_indexes(inspector, table)
    _guard_append_only()


def _add_missing_columns(inspector: sa.Inspector, table: sa.Table) -> None:
    present = {c["name"] for c in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in present:
            op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))


def _add_missing_indexes(inspector: sa.Inspector, table: sa.Table) -> None:
    present = {i["name"] for i in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in present:
            index.create(op.get_bind())


def _guard_append_only() -> None:
    """Triggers refusing UPDATE, DELETE and TRUNCATE of stored events, for every database client."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_REFUSE_FUNCTION)
        op.execute(
            f"CREATE OR REPLACE TRIGGER {EVENTS}_append_only BEFORE UPDATE OR DELETE ON {EVENTS} "
            "FOR EACH ROW EXECUTE FUNCTION cohortline_refuse_change()"
        )
        op.execute(
            f"CREATE OR REPLACE TRIGGER {EVENTS}_no_truncate BEFORE TRUNCATE ON {EVENTS} "
            "FOR EACH STATEMENT EXECUTE FUNCTION cohortline_refuse_change()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {EVENTS}_no_{operation.lower()} BEFORE {operation} ON {EVENTS} "
            f"BEGIN SELECT RAISE(ABORT, '{EVENTS} is append-only: {operation} refused'); END"
        )


_PG_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION cohortline_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS cohortline_refuse_change() CASCADE")
    for table in reversed(_tables(sa.MetaData())):
        op.drop_table(table.name)
