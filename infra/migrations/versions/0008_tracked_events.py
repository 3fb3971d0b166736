"""Custom events (`EventTracked`): the activity projection keeps a period kind per tracked event's
name (`event:<name>`, a name of up to 200 characters), so the kind columns widen. No stored event
had this type before, so nothing is replayed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KIND_TABLES = ("rm_user_periods", "rm_period_counts")


def upgrade() -> None:
    _widen(80, 210)


def downgrade() -> None:
    _widen(210, 80)


def _widen(before: int, after: int) -> None:
    for table in KIND_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("kind", type_=sa.String(after), existing_type=sa.String(before))
