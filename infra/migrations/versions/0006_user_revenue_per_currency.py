"""A user's net revenue is per currency only: `rm_users.net_revenue`, which summed currencies, is
dropped; the user state and RFM read `rm_user_revenue` (per user and currency, since 0004).

Nothing else changes shape, so nothing is replayed. The search documents change shape (net revenue
per currency): `cohortline migrate` replaces a user index of the older shape and refills it from the
read models, and the services refuse to start on one (projections.search.StaleIndex).

Downgrading puts the column back with what it held: every payment minus every refund of the user,
whatever the currency, those still waiting for their order included.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rm_users") as batch:
        batch.drop_column("net_revenue")


def downgrade() -> None:
    with op.batch_alter_table("rm_users") as batch:
        batch.add_column(sa.Column("net_revenue", sa.BigInteger, nullable=True))
    users = sa.table("rm_users", sa.column("user_id"), sa.column("net_revenue"))
    revenue = sa.table("rm_user_revenue", sa.column("user_id"), sa.column("net"))
    pending = sa.table("rm_pending_payments", sa.column("user_id"), sa.column("paid"), sa.column("amount"))
    counted = (
        sa.select(sa.func.coalesce(sa.func.sum(revenue.c.net), 0))
        .where(revenue.c.user_id == users.c.user_id)
        .scalar_subquery()
    )
    signed = sa.case((pending.c.paid, pending.c.amount), else_=-pending.c.amount)
    waiting = (
        sa.select(sa.func.coalesce(sa.func.sum(signed), 0))
        .where(pending.c.user_id == users.c.user_id)
        .scalar_subquery()
    )
    op.execute(users.update().values(net_revenue=counted + waiting))
    with op.batch_alter_table("rm_users") as batch:
        batch.alter_column("net_revenue", existing_type=sa.BigInteger, nullable=False)
