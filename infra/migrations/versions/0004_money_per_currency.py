"""Money per currency: each order keeps its currency, and the revenue cells and users' net revenue
are kept per currency (`rm_revenue`, `rm_user_revenue`, `rm_pending_payments`).

The analytics read models of an existing store cannot gain what they never kept (an order's
currency), so this revision empties them and the projection's positions, dead letters and halts:
the projection replays the log into the new shape. `cohortline migrate` rebuilds it at once (blue /
green, while the API and workers keep running); the embedded default replays it as it starts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.migrations import empty_for_replay

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REPLAYS = ("analytics",)
ANALYTICS_TABLES = (
    "rm_users",
    "rm_user_periods",
    "rm_period_counts",
    "rm_orders",
    "rm_cohort_sizes",
    "rm_cohort_returns",
    "rm_cohort_last",
)


def upgrade() -> None:
    with op.batch_alter_table("rm_orders") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=True))
    op.create_table(
        "rm_revenue",
        sa.Column("granularity", sa.String(8), primary_key=True),
        sa.Column("period", sa.Date(), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("paid", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("orders_paid", sa.Integer, nullable=False),
    )
    op.create_table(
        "rm_user_revenue",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("net", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rm_pending_payments",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("paid", sa.Boolean, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rm_pending_payments_order_id", "rm_pending_payments", ["order_id"])
    empty_for_replay("analytics", ANALYTICS_TABLES)


def downgrade() -> None:
    op.drop_table("rm_pending_payments")
    op.drop_table("rm_user_revenue")
    op.drop_table("rm_revenue")
    with op.batch_alter_table("rm_orders") as batch:
        batch.drop_column("currency")
