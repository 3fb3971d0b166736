"""RFM scores and segments (metrics.md "RFM") at the watermark.

Recency is the days since the last order (UTC calendar days), frequency the orders placed, monetary
the net revenue in the reporting currency (money is never converted: a customer without payments in
it has 0; the currency is configured, or else the one of most orders, ties to the first code). Each
is scored 1-5 by quintile among the customers with an order: a customer whose
value is better than `w` of the `n` customers scores `1 + floor(5 * w / n)`. Ties score alike, so
the many one-time buyers of a shop all get frequency 1 (what the segment map expects of them),
and the same history always gives the same scores.

A score is a step function of the value, so four cut points per metric describe it for everyone:
score >= k exactly when the value is above the value at sorted index ceil((k-1) * n / 5) - 1. The
cut points depend on all customers, so they are computed when asked, never stored per user; a
segment is then a rule over stored columns (projections.rules: ranges of `last_order_at` and
`orders`, one box per (R, F) cell of the map) that SQL and Elasticsearch filter on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from projections.money import rounded_money
from projections.orders import orders
from projections.rules import Compare, Rule, all_of, any_of, present
from projections.schema import aware_utc
from projections.users import money, users
from projections.value import user_revenue

SEGMENT_NAMES = {
    "champions": "Champions",
    "loyal": "Loyal",
    "potential_loyalist": "Potential Loyalist",
    "new": "New",
    "promising": "Promising",
    "need_attention": "Need Attention",
    "about_to_sleep": "About to Sleep",
    "at_risk": "At Risk",
    "cant_lose_them": "Can't Lose Them",
    "lost": "Lost",
}

_MAP = {
    "lost": ((1, 2), (1, 2)),
    "at_risk": ((1, 2), (3, 4)),
    "cant_lose_them": ((1, 2), (5,)),
    "about_to_sleep": ((3,), (1, 2)),
    "need_attention": ((3,), (3,)),
    "loyal": ((3, 4), (4, 5)),
    "promising": ((4,), (1,)),
    "new": ((5,), (1,)),
    "potential_loyalist": ((4, 5), (2, 3)),
    "champions": ((5,), (4, 5)),
}
"""The common RFM map over (recency score, frequency score); every pair has exactly one segment."""

SEGMENT_CELLS: dict[str, tuple[tuple[int, int], ...]] = {
    name: tuple((r, f) for r in rs for f in fs) for name, (rs, fs) in _MAP.items()
}
_SEGMENT_OF = {cell: name for name, cells in SEGMENT_CELLS.items() for cell in cells}


def segment(recency_score: int, frequency_score: int) -> str:
    return _SEGMENT_OF[(recency_score, frequency_score)]


def cut_indexes(customers: int) -> tuple[int, ...]:
    """The sorted (ascending, 0-based) positions whose values bound scores 2, 3, 4 and 5."""
    return tuple(-(-(k - 1) * customers // 5) - 1 for k in range(2, 6))


def cut_points(ascending: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(ascending[i] for i in cut_indexes(len(ascending)))


def score(value: Any, cuts: Sequence[Any]) -> int:
    return 1 + sum(1 for cut in cuts if value > cut)


@dataclass(frozen=True)
class Cuts:
    """The cut points of the three scores among `customers` customers; monetary in 1/10,000 units of
    `currency`, the reporting currency (None while no order is known)."""

    customers: int
    last_order_days: tuple[date, ...] = ()
    orders: tuple[int, ...] = ()
    monetary: tuple[int, ...] = ()
    currency: str | None = None

    def scores(self, last_order_at: datetime, orders: int, monetary: int) -> tuple[int, int, int]:
        return (
            score(aware_utc(last_order_at).date(), self.last_order_days),  # type: ignore[union-attr]
            score(orders, self.orders),
            score(monetary, self.monetary),
        )


@dataclass(frozen=True)
class Box:
    """Users whose last order day lies in (after_day, through_day] and whose orders lie in
    (orders_above, orders_through]; None leaves a side open."""

    after_day: date | None
    through_day: date | None
    orders_above: int | None
    orders_through: int | None

    @property
    def ordered_from(self) -> datetime | None:
        """The first instant of a last order after `after_day` (naive UTC)."""
        return _midnight_after(self.after_day)

    @property
    def ordered_before(self) -> datetime | None:
        """The first instant after `through_day` (naive UTC)."""
        return _midnight_after(self.through_day)

    def rule(self) -> Rule:
        conditions = [Compare("orders", ">", 0), present("last_order_at")]
        if self.ordered_from is not None:
            conditions.append(Compare("last_order_at", ">=", self.ordered_from))
        if self.ordered_before is not None:
            conditions.append(Compare("last_order_at", "<", self.ordered_before))
        if self.orders_above is not None:
            conditions.append(Compare("orders", ">", self.orders_above))
        if self.orders_through is not None:
            conditions.append(Compare("orders", "<=", self.orders_through))
        return all_of(*conditions)


def _midnight_after(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day + timedelta(days=1), time())


def segment_boxes(name: str, cuts: Cuts) -> list[Box]:
    """The ranges of stored columns that hold exactly the customers of segment `name`."""
    if cuts.customers == 0:
        return []
    boxes = []
    for r, f in SEGMENT_CELLS[name]:
        after_day, through_day = _score_range(cuts.last_order_days, r)
        orders_above, orders_through = _score_range(cuts.orders, f)
        if _empty(after_day, through_day) or _empty(orders_above, orders_through):
            continue
        boxes.append(Box(after_day, through_day, orders_above, orders_through))
    return boxes


def segment_rule(name: str, cuts: Cuts) -> Rule:
    """The rule that holds exactly for the customers of segment `name` under `cuts`."""
    return boxes_rule(segment_boxes(name, cuts))


def boxes_rule(boxes: Sequence[Box]) -> Rule:
    return any_of(*(box.rule() for box in boxes))


def _score_range(cuts: Sequence[Any], wanted: int) -> tuple[Any, Any]:
    """Values v with score(v, cuts) == wanted are those with low < v <= high (None: open)."""
    low = cuts[wanted - 2] if wanted >= 2 else None
    high = cuts[wanted - 1] if wanted <= 4 else None
    return low, high


def _empty(low: Any, high: Any) -> bool:
    return low is not None and high is not None and high <= low


def reporting_currency(conn: Connection, configured: str | None = None) -> str | None:
    """The currency monetary is ranked in: `configured`, or else the currency of most orders (the
    first code by code point among those tied); None while no order is known."""
    if configured is not None:
        return configured
    c = orders.c
    counts = conn.execute(
        select(c.currency, func.count()).where(c.currency.isnot(None)).group_by(c.currency)
    ).all()
    return min(counts, key=lambda found: (-found[1], found[0]))[0] if counts else None


def rfm_cuts(conn: Connection, currency: str | None = None) -> Cuts:
    """The cut points over the read models now, monetary in `currency` (configured) or else in the
    currency of most orders (reporting_currency)."""
    c = users.c
    currency = reporting_currency(conn, currency)
    customers = conn.execute(select(func.count()).where(c.orders > 0)).scalar_one()
    if customers == 0:
        return Cuts(0, currency=currency)
    wanted = [i + 1 for i in cut_indexes(customers)]
    net = user_revenue.c
    with_revenue = users.outerjoin(user_revenue, and_(net.user_id == c.user_id, net.currency == currency))

    def values(column: Any) -> tuple[Any, ...]:
        rank = func.row_number().over(order_by=column).label("rank")
        ranked = select(column.label("value"), rank).select_from(with_revenue).where(c.orders > 0).subquery()
        found = dict(
            conn.execute(
                select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(sorted(set(wanted))))
            ).all()
        )
        return tuple(found[r] for r in wanted)

    days = tuple(aware_utc(at).date() for at in values(c.last_order_at))  # type: ignore[union-attr]
    monetary = values(func.coalesce(net.net, 0))
    return Cuts(customers, days, values(c.orders), tuple(int(m) for m in monetary), currency)


class CutsCache:
    """The cut points of the latest read-model version asked for (shared by request threads), with
    monetary in `currency` (configured) or else in the currency of most orders."""

    def __init__(self, currency: str | None = None) -> None:
        self.currency = currency
        self._lock = threading.Lock()
        self._version: Any = None
        self._cuts: Cuts | None = None

    def get(self, version: Any, compute: Callable[[], Cuts]) -> Cuts:
        with self._lock:
            if self._cuts is not None and self._version == version:
                return self._cuts
        cuts = compute()
        with self._lock:
            self._version, self._cuts = version, cuts
        return cuts

    def current(self, engine: Engine, version: Any) -> Cuts:
        """The cut points of the read models at `version`, read with `engine` unless cached."""

        def compute() -> Cuts:
            with engine.connect() as conn:
                return rfm_cuts(conn, self.currency)

        return self.get(version, compute)


def present_rfm(user: dict[str, Any], watermark: datetime, cuts: Cuts) -> dict[str, Any] | None:
    """The RFM at the watermark of a user as the search documents hold it (net revenue exact, per
    currency: projections.search.user_document); None for a user without orders. Monetary is their
    net revenue in the reporting currency (`currency`), 0 without any, shown as money."""
    if not user["orders"] or user["last_order_at"] is None:
        return None
    last_order_at = datetime.fromisoformat(user["last_order_at"])
    held = user["net_revenue"].get(cuts.currency) if cuts.currency is not None else None
    monetary = money(Decimal(held)) if held is not None else 0
    r, f, m = cuts.scores(last_order_at, user["orders"], monetary)
    return {
        "recency_days": (aware_utc(watermark).date() - aware_utc(last_order_at).date()).days,  # type: ignore[union-attr]
        "frequency": user["orders"],
        "monetary": rounded_money(monetary),
        "currency": cuts.currency,
        "r": r,
        "f": f,
        "m": m,
        "segment": segment(r, f),
    }
