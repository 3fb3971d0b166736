"""The analytics read models' size on PostgreSQL, measured by the projection benchmarks."""

from __future__ import annotations

import psycopg2

from projections.analytics import AnalyticsProjection

COUNTED = (
    "rm_cohort_sizes",
    "rm_cohort_returns",
    "rm_cohort_last",
    "rm_user_periods",
    "rm_feature_users",
    "rm_feature_days",
)


def read_model_size(url: str) -> tuple[int, dict[str, int]]:
    """After VACUUM ANALYZE: the bytes of every analytics table with its indexes and TOAST, and the
    rows of the cohort, period and feature tables."""
    raw = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            names = [table.name for table in AnalyticsProjection.tables]
            cursor.execute(
                "SELECT sum(pg_total_relation_size(name::regclass)) FROM unnest(%s) AS name", (names,)
            )
            total = int(cursor.fetchone()[0])
            rows = {}
            for table in COUNTED:
                cursor.execute(f"SELECT count(*) FROM {table}")
                rows[table] = cursor.fetchone()[0]
    finally:
        raw.close()
    return total, rows


def size_line(total: int, rows: dict[str, int]) -> str:
    counted = ", ".join(f"{name} {n:,}" for name, n in rows.items())
    return f"read models {total / 1e6:,.1f} MB; rows: {counted}"
