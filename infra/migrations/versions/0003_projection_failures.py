"""Projection failures by cause: dead letters get their kind, a retry count and the time of the last
retry, and halted projections are kept in `projection_halts`.

Dead letters parked before kinds existed become `invalid_event` when they have a position (an event
the projection failed on) and `unreadable_message` when they have none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DEAD_LETTERS = "projection_dead_letters"
HALTS = "projection_halts"


def upgrade() -> None:
    with op.batch_alter_table(DEAD_LETTERS) as batch:
        batch.add_column(sa.Column("kind", sa.String(24), nullable=True))
        batch.add_column(sa.Column("retries", sa.Integer, nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("last_retried_at", sa.DateTime(), nullable=True))
    parked = sa.table(DEAD_LETTERS, sa.column("kind", sa.String(24)), sa.column("position", sa.BigInteger))
    op.execute(
        parked.update().values(
            kind=sa.case((parked.c.position > 0, "invalid_event"), else_="unreadable_message")
        )
    )
    with op.batch_alter_table(DEAD_LETTERS) as batch:
        batch.alter_column("kind", existing_type=sa.String(24), nullable=False)
    op.create_table(
        HALTS,
        sa.Column("projection", sa.String(32), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(HALTS)
    with op.batch_alter_table(DEAD_LETTERS) as batch:
        batch.drop_column("last_retried_at")
        batch.drop_column("retries")
        batch.drop_column("kind")
