"""Money as the contract writes it (metrics.md "Conventions"): exact amounts, kept in 1/10,000 units
per currency, shown as decimal strings rounded half-even to 2 places."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from projections.schema import MONEY_SCALE

CENT = Decimal("0.01")


def money(amount: Fraction) -> str:
    """An exact amount in currency units, rounded half-even to 2 places, never `-0.00`."""
    cents = round(amount * 100)  # Fraction rounds half to even
    return str(Decimal(cents).scaleb(-2).quantize(CENT))


def units(scaled: int) -> Fraction:
    """An amount kept in 1/10,000 units, in currency units."""
    return Fraction(scaled, MONEY_SCALE)


def rounded_money(scaled: int, members: int = 1) -> str:
    """An amount kept in 1/10,000 units (divided by `members`, exactly), as money."""
    return money(units(scaled) / members)
