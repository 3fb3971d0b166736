"""The read models' SQL metadata and dialect-neutral expressions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, case
from sqlalchemy.sql.elements import ColumnElement

from domain.catalogue import MONEY_SCALE as MONEY_SCALE

metadata = MetaData()


def least(a: Any, b: Any) -> ColumnElement[Any]:
    """The smaller of two nullable values (NULL only when both are)."""
    return case((a.is_(None), b), (b.is_(None), a), (a <= b, a), else_=b)


def greatest(a: Any, b: Any) -> ColumnElement[Any]:
    """The greater of two nullable values (NULL only when both are)."""
    return case((a.is_(None), b), (b.is_(None), a), (a >= b, a), else_=b)


def naive_utc(value: Any) -> Any:
    """Datetimes are stored as naive UTC in read models (SQLite has no zone type); others pass."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def money_text(scaled: int) -> str:
    """An amount kept as 1/10,000 units, as a decimal string with at least two places."""
    value = (Decimal(scaled) / MONEY_SCALE).quantize(Decimal("0.0001")).normalize()
    return str(value.quantize(Decimal("0.01"))) if -value.as_tuple().exponent <= 2 else str(value)
