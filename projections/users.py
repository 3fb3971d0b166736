"""The user state read model (metrics.md "User state"): one row per user. `channel` and
`first_country` are first-touch (the user's earliest event that names them: what cohort breakdowns
use); `country` and `tier` are the latest. Net revenue is not here: it is per currency of the order,
kept by projections.value (`rm_user_revenue`) and attached to the rows for the search documents
(projections.search.attach_net_revenue).

Every column merges commutatively (min, max, sum, or latest by event time then position), so the
row is the same whatever order the events arrive in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Date, DateTime, Integer, String, Table, select

from projections.failures import InvalidEvent
from projections.records import EventRecord
from projections.schema import MONEY_SCALE, aware_utc, greatest, least, metadata, naive_utc
from projections.sql import execute_many, upsert

users = Table(
    "rm_users",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("first_seen_at", DateTime(), nullable=False),
    Column("signup_at", DateTime()),
    Column("first_order_at", DateTime()),
    Column("last_active_at", DateTime()),
    Column("last_order_at", DateTime()),
    Column("orders", Integer, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("open_tickets", Integer, nullable=False),
    Column("country", String(2)),
    Column("country_key", String(48)),
    Column("channel", String(64)),
    Column("channel_key", String(48)),
    Column("first_country", String(2)),
    Column("first_country_key", String(48)),
    Column("tier", String(64)),
    Column("tier_key", String(48)),
    Column("resurrected_on", Date()),
    Column("last_position", BigInteger, nullable=False),
)


@dataclass
class UserDelta:
    """What a batch of events changes for one user; merges like the SQL upsert does."""

    user_id: str
    first_seen_at: datetime
    last_position: int
    signup_at: datetime | None = None
    first_order_at: datetime | None = None
    last_active_at: datetime | None = None
    last_order_at: datetime | None = None
    orders: int = 0
    points: int = 0
    open_tickets: int = 0
    country: str | None = None
    country_key: OrderKey | None = None
    channel: str | None = None
    channel_key: OrderKey | None = None
    first_country: str | None = None
    first_country_key: OrderKey | None = None
    tier: str | None = None
    tier_key: OrderKey | None = None

    def add(self, event: EventRecord) -> None:
        at = event.occurred_at
        if at < self.first_seen_at:
            self.first_seen_at = at
        if event.position > self.last_position:
            self.last_position = event.position
        if event.is_activity and (self.last_active_at is None or at > self.last_active_at):
            self.last_active_at = at
        country = event.context.get("country")
        channel = event.context.get("channel")
        if country or channel:
            key = (at, event.position)
            if country and (self.country_key is None or key > self.country_key):
                self.country, self.country_key = country, key
            if country and (self.first_country_key is None or key < self.first_country_key):
                self.first_country, self.first_country_key = country, key
            if channel and (self.channel_key is None or key < self.channel_key):
                self.channel, self.channel_key = channel, key
        effect = _TYPE_EFFECTS.get(event.type)
        if effect is not None:
            effect(self, event)

    def row(self) -> dict[str, Any]:
        """The delta as the values of one upserted row (times naive UTC, order keys as text)."""
        row = {k: naive_utc(v) for k, v in vars(self).items()}
        for name in ("country_key", "channel_key", "first_country_key", "tier_key"):
            row[name] = key_text(row[name])
        return row


OrderKey = tuple[datetime, int]
"""Sorts events by event time, then log position."""


def key_text(key: OrderKey | None) -> str | None:
    """An order key as stored: text that sorts like the key."""
    if key is None:
        return None
    at, position = key
    return f"{aware_utc(at).strftime('%Y%m%d%H%M%S%f')}:{position:020d}"  # type: ignore[union-attr]


def money(amount: Decimal) -> int:
    return int((amount * MONEY_SCALE).to_integral_value())


MAX_MONEY = 2**63 - 1
"""The most a BigInteger column holds, in 1/10,000 units."""


def event_money(event: EventRecord) -> int:
    """The event's amount in 1/10,000 units; InvalidEvent when the read models cannot hold it."""
    scaled = money(event.data["amount"])
    if abs(scaled) > MAX_MONEY:
        raise InvalidEvent(f"amount {event.data['amount']} is beyond what the read models hold")
    return scaled


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else min(a, b)


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


def _registered(delta: UserDelta, event: EventRecord) -> None:
    delta.signup_at = _min(delta.signup_at, event.occurred_at)


def _placed(delta: UserDelta, event: EventRecord) -> None:
    delta.orders += 1
    delta.first_order_at = _min(delta.first_order_at, event.occurred_at)
    delta.last_order_at = _max(delta.last_order_at, event.occurred_at)


def _tier(delta: UserDelta, event: EventRecord) -> None:
    key = (event.occurred_at, event.position)
    if delta.tier_key is None or key > delta.tier_key:
        delta.tier, delta.tier_key = event.data["tier"], key


def _points(sign: int) -> Any:
    def effect(delta: UserDelta, event: EventRecord) -> None:
        delta.points += sign * event.data["points"]

    return effect


def _tickets(change: int) -> Any:
    def effect(delta: UserDelta, event: EventRecord) -> None:
        delta.open_tickets += change

    return effect


_TYPE_EFFECTS = {
    "UserRegistered": _registered,
    "OrderPlaced": _placed,
    "MembershipChanged": _tier,
    "PointsEarned": _points(+1),
    "PointsRedeemed": _points(-1),
    "TicketOpened": _tickets(+1),
    "TicketResolved": _tickets(-1),
}


def fold(events: Iterable[EventRecord]) -> dict[str, UserDelta]:
    """Per user, the merged effect of `events` (events without a user are ignored)."""
    deltas: dict[str, UserDelta] = {}
    for event in events:
        if event.user_id is None:
            continue
        delta = deltas.get(event.user_id)
        if delta is None:
            delta = deltas[event.user_id] = UserDelta(event.user_id, event.occurred_at, event.position)
        delta.add(event)
    return deltas


def upsert_deltas(conn: Connection, deltas: list[UserDelta]) -> dict[str, dict[str, Any]]:
    """Merge the deltas into the user rows; returns the rows as they are now."""
    stmt = upsert(conn, users)
    new = stmt.excluded
    c = users.c
    written = execute_many(
        conn,
        stmt.on_conflict_do_update(
            index_elements=[c.user_id],
            set_={
                "first_seen_at": least(c.first_seen_at, new.first_seen_at),
                "signup_at": least(c.signup_at, new.signup_at),
                "first_order_at": least(c.first_order_at, new.first_order_at),
                "last_active_at": greatest(c.last_active_at, new.last_active_at),
                "last_order_at": greatest(c.last_order_at, new.last_order_at),
                "orders": c.orders + new.orders,
                "points": c.points + new.points,
                "open_tickets": c.open_tickets + new.open_tickets,
                **_latest("country", c, new, newest=True),
                **_latest("channel", c, new, newest=False),
                **_latest("first_country", c, new, newest=False),
                **_latest("tier", c, new, newest=True),
                "last_position": greatest(c.last_position, new.last_position),
            },
        ),
        [d.row() for d in deltas],
        *users.c,
    )
    return {row.user_id: dict(row._mapping) for row in written}


def _latest(name: str, current: Any, new: Any, *, newest: bool) -> dict[str, Any]:
    from sqlalchemy import case

    key, new_key = current[f"{name}_key"], new[f"{name}_key"]
    wins = new_key > key if newest else new_key < key
    take_new = (key.is_(None) & new_key.isnot(None)) | (new_key.isnot(None) & wins)
    return {
        name: case((take_new, new[name]), else_=current[name]),
        f"{name}_key": case((take_new, new_key), else_=key),
    }


def user_row(conn: Connection, user_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def user_rows(conn: Connection, user_ids: Iterable[str]) -> list[dict[str, Any]]:
    ids = sorted(set(user_ids))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows += [dict(r) for r in conn.execute(select(users).where(users.c.user_id.in_(chunk))).mappings()]
    return rows
