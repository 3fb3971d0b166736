"""Shares, group differences and their 95 % confidence intervals (metrics.md "Conventions"): exact
shares and means, rounded only when presented."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from projections.money import money, units

Z95 = Decimal("1.959964")


def share(part: int, whole: int) -> float | None:
    """A share rounded to 4 places; null over nobody."""
    return round(part / whole, 4) if whole else None


def share_difference(treated: Sequence[bool], control: Sequence[bool]) -> dict[str, Any]:
    """Treated - control share with its Wald (unpooled) interval; null when a group is empty."""
    if not treated or not control:
        return {"value": None, "ci95": None}
    p1, p0 = Fraction(sum(treated), len(treated)), Fraction(sum(control), len(control))
    variance = p1 * (1 - p1) / len(treated) + p0 * (1 - p0) / len(control)
    return _interval(p1 - p0, variance, min(len(treated), len(control)), _four_places)


def mean_difference(treated: Sequence[Fraction], control: Sequence[Fraction]) -> dict[str, Any]:
    """Treated - control mean money with its Welch interval; null when a group is empty."""
    if not treated or not control:
        return {"value": None, "ci95": None}
    difference = _mean(treated) - _mean(control)
    smallest = min(len(treated), len(control))
    variance = Fraction(0)
    if smallest >= 2:
        variance = _sample_variance(treated) / len(treated) + _sample_variance(control) / len(control)
    return _interval(difference, variance, smallest, money)


def money_means(amounts: Sequence[Mapping[str, int]], currencies: Sequence[str]) -> dict[str, str]:
    """Per currency the mean per member of amounts kept in 1/10,000 units (a member without the
    currency counts 0); `{}` over nobody."""
    if not amounts:
        return {}
    return {c: money(units(sum(a.get(c, 0) for a in amounts)) / len(amounts)) for c in currencies}


def money_differences(
    treated: Sequence[Mapping[str, int]], control: Sequence[Mapping[str, int]]
) -> dict[str, dict[str, Any]]:
    """Per currency seen in either group, the difference of the means per member with its interval."""
    return {
        c: mean_difference([units(a.get(c, 0)) for a in treated], [units(a.get(c, 0)) for a in control])
        for c in currencies_of(*treated, *control)
    }


def compare_groups(
    first: Sequence[Mapping[str, Any]], second: Sequence[Mapping[str, Any]], shares: Sequence[str], spent: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Two groups' outcomes, one mapping per member (a bool per share, amounts per currency under
    `spent`): each group's shares and money means (over the currencies of either group), and first
    - second for each with its 95 % interval."""
    amounts = [[o[spent] for o in first], [o[spent] for o in second]]
    currencies = currencies_of(*amounts[0], *amounts[1])
    figures = [
        {
            **{s: share(sum(o[s] for o in group), len(group)) for s in shares},
            spent: money_means(group_amounts, currencies),
        }
        for group, group_amounts in zip((first, second), amounts, strict=True)
    ]
    differences: dict[str, Any] = {
        s: share_difference([o[s] for o in first], [o[s] for o in second]) for s in shares
    }
    differences[spent] = money_differences(*amounts)
    return figures, differences


def currencies_of(*amounts: Mapping[str, int]) -> list[str]:
    return sorted({c for a in amounts for c in a})


def _interval(
    difference: Fraction, variance: Fraction, smallest: int, present: Callable[[Fraction], Any]
) -> dict[str, Any]:
    if smallest < 2:
        return {"value": present(difference), "ci95": None}
    with localcontext() as ctx:
        ctx.prec = 60
        se = (Decimal(variance.numerator) / Decimal(variance.denominator)).sqrt()
        centre = Decimal(difference.numerator) / Decimal(difference.denominator)
        bounds = (centre - Z95 * se, centre + Z95 * se)
    return {"value": present(difference), "ci95": [present(Fraction(b)) for b in bounds]}


def _four_places(exact: Fraction) -> float:
    return float(round(exact, 4))


def _mean(xs: Sequence[Fraction]) -> Fraction:
    return sum(xs, Fraction(0)) / len(xs)


def _sample_variance(xs: Sequence[Fraction]) -> Fraction:
    mean = _mean(xs)
    return sum(((x - mean) ** 2 for x in xs), Fraction(0)) / (len(xs) - 1)
