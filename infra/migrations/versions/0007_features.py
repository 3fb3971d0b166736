"""Scenes and tools: each user's adoption and latest use of each feature (`rm_feature_users`) and
per feature and day its uses, adoptions and repeat users (`rm_feature_days`); the cohort cells take
a feature as the cohort definition and as the return kind, so those columns widen to a feature's
name.

The feature cells and the feature cohorts hold what the analytics projection has already passed,
so this revision empties its read models, and the projection replays the log (`cohortline
migrate` rebuilds it at once; the embedded default replays it as it starts).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra.migrations import empty_for_replay

revision = "0007"
down_revision = "0006"
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
    "rm_payments",
    "rm_campaigns",
    "rm_campaign_members",
    "rm_coupons",
    "rm_coupon_redemptions",
    "rm_tickets",
    "rm_ratings",
)
COHORT_CELLS = ("rm_cohort_sizes", "rm_cohort_returns", "rm_cohort_last")


def upgrade() -> None:
    op.create_table(
        "rm_feature_users",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("feature", sa.String(80), primary_key=True),
        sa.Column("adopted_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rm_feature_users_adoption", "rm_feature_users", ["feature", "adopted_at"])
    op.create_table(
        "rm_feature_days",
        sa.Column("feature", sa.String(80), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.Column("adopted", sa.Integer, nullable=False),
        sa.Column("repeated", sa.Integer, nullable=False),
    )
    empty_for_replay("analytics", ANALYTICS_TABLES)
    _widen(definition=(12, 80), returns=(8, 80))


def downgrade() -> None:
    empty_for_replay("analytics", ANALYTICS_TABLES)
    _widen(definition=(80, 12), returns=(80, 8))
    op.drop_table("rm_feature_days")
    op.drop_table("rm_feature_users")


def _widen(definition: tuple[int, int], returns: tuple[int, int]) -> None:
    for table in COHORT_CELLS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "definition", type_=sa.String(definition[1]), existing_type=sa.String(definition[0])
            )
            if table != "rm_cohort_sizes":
                batch.alter_column(
                    "returns", type_=sa.String(returns[1]), existing_type=sa.String(returns[0])
                )
