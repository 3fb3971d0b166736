"""How read-model rows are shown to API clients (and indexed for search)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from projections.lifecycle import Thresholds, state
from projections.rfm import Cuts, present_rfm
from projections.schema import MONEY_SCALE, rfc3339


def money_text(scaled: int) -> str:
    """An amount kept as 1/10,000 units, as a decimal string with at least two places."""
    value = (Decimal(scaled) / MONEY_SCALE).quantize(Decimal("0.0001")).normalize()
    return str(value.quantize(Decimal("0.01"))) if -value.as_tuple().exponent <= 2 else str(value)


def present_user(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "first_seen_at": rfc3339(row["first_seen_at"]),
        "signup_at": rfc3339(row["signup_at"]),
        "first_order_at": rfc3339(row["first_order_at"]),
        "last_active_at": rfc3339(row["last_active_at"]),
        "last_order_at": rfc3339(row["last_order_at"]),
        "orders": row["orders"],
        "net_revenue": money_text(row["net_revenue"]),
        "points": row["points"],
        "open_tickets": row["open_tickets"],
        "country": row["country"],
        "channel": row["channel"],
        "tier": row["tier"],
        "resurrected_on": row["resurrected_on"].isoformat() if row["resurrected_on"] else None,
        "last_position": row["last_position"],
    }


def user_state(
    user: dict[str, Any], watermark: datetime | None, thresholds: Thresholds, cuts: Cuts
) -> dict[str, Any]:
    """The presented user with its lifecycle state and RFM at the watermark (metrics.md "User
    state"); both are relative to the watermark, so they are derived when asked, not stored."""
    if watermark is None:
        return {**user, "lifecycle": None, "segment": None, "rfm": None}
    first = datetime.fromisoformat(user["first_seen_at"])
    last = datetime.fromisoformat(user["last_active_at"]) if user["last_active_at"] else None
    back = date.fromisoformat(user["resurrected_on"]) if user["resurrected_on"] else None
    rfm = present_rfm(user, watermark, cuts)
    return {
        **user,
        "lifecycle": state(first, last, back, watermark, thresholds),
        "segment": rfm["segment"] if rfm else None,
        "rfm": rfm,
    }
