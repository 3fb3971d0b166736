"""The analytics read models' size on PostgreSQL, printed by the projection benchmarks."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text

from projections.analytics import AnalyticsProjection
from projections.features import feature_days, feature_users
from projections.retention import cohort_last, cohort_returns, cohort_sizes

COUNTED = (cohort_sizes, cohort_returns, cohort_last, feature_users, feature_days)


def read_model_size(engine: Engine) -> tuple[int, dict[str, int]]:
    """(bytes of every analytics table with its indexes, rows of the cohort cells and feature tables)."""
    with engine.connect() as conn:
        total = sum(
            conn.execute(text("SELECT pg_total_relation_size(:name)"), {"name": t.name}).scalar_one()
            for t in AnalyticsProjection.tables
        )
        rows = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in COUNTED}
    return total, rows


def size_line(total: int, rows: dict[str, int]) -> str:
    counted = ", ".join(f"{name} {n:,}" for name, n in rows.items())
    return f"read models {total / 2**20:,.1f} MiB; rows: {counted}"
