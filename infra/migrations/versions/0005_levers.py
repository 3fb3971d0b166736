"""The levers: payments with their currency and time (`rm_payments`), campaigns with their members
and coupons (`rm_campaigns`, `rm_campaign_members`, `rm_coupons`, `rm_coupon_redemptions`), and
customer service (`rm_tickets`, `rm_ratings`).

The new tables hold what the analytics projection has already passed, so this revision empties its
read models, positions, dead letters and halts, and the projection replays the log (`cohortline
migrate` rebuilds it at once; the embedded default replays it as it starts).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.migrations import empty_for_replay

revision = "0005"
down_revision = "0004"
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
    "rm_revenue",
    "rm_user_revenue",
    "rm_pending_payments",
)


def upgrade() -> None:
    op.create_table(
        "rm_payments",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rm_payments_user", "rm_payments", ["user_id", "occurred_at"])
    op.create_index("ix_rm_payments_time", "rm_payments", ["occurred_at"])
    op.create_table(
        "rm_campaigns",
        sa.Column("campaign_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(500)),
        sa.Column("kind", sa.String(32)),
        sa.Column("starts_at", sa.DateTime()),
        sa.Column("ends_at", sa.DateTime()),
        sa.Column("ended", sa.Boolean, nullable=False),
    )
    op.create_table(
        "rm_campaign_members",
        sa.Column("campaign_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("group", sa.String(16), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rm_coupons",
        sa.Column("coupon_id", sa.String(128), primary_key=True),
        sa.Column("campaign_id", sa.String(128)),
    )
    op.create_index("ix_rm_coupons_campaign_id", "rm_coupons", ["campaign_id"])
    op.create_table(
        "rm_coupon_redemptions",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coupon_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_rm_coupon_redemptions_coupon_id", "rm_coupon_redemptions", ["coupon_id"])
    op.create_table(
        "rm_tickets",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("opened_at", sa.DateTime()),
        sa.Column("first_response_at", sa.DateTime()),
        sa.Column("resolved_at", sa.DateTime()),
    )
    for moment in ("opened", "first_response", "resolved"):
        op.create_index(f"ix_rm_tickets_{moment}", "rm_tickets", [f"{moment}_at"])
    op.create_table(
        "rm_ratings",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rm_ratings_occurred_at", "rm_ratings", ["occurred_at"])
    empty_for_replay("analytics", ANALYTICS_TABLES)


def downgrade() -> None:
    for table in (
        "rm_ratings",
        "rm_tickets",
        "rm_coupon_redemptions",
        "rm_coupons",
        "rm_campaign_members",
        "rm_campaigns",
        "rm_payments",
    ):
        op.drop_table(table)
