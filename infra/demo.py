"""`cohortline demo`: a small realistic shop history recorded and projected on the embedded default."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from domain.envelope import parse_envelope
from infra.bootstrap import build_system
from infra.config import Settings
from projections.search import UserQuery
from projections.tracking import progress
from projections.users import users
from streams.local import LocalFollower
from streams.log_reader import LogReader

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
WEEKS = 8
USERS = 300
COUNTRIES = ("GB", "DE", "FR", "NL", "CN", "US")
CHANNELS = ("app", "web", "mini_program", "store")
SCENES = ("shopping", "social", "content")
TOOLS = ("check_in", "wishlist", "price_alert", "coupon_center")


def demo_events(seed: int = 7) -> list[dict[str, Any]]:
    """Registrations, sessions, scene visits, tool use and orders of a few hundred users over
    several weeks, in event-time order; deterministic for a seed."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(USERS):
        events += _user_story(rng, f"u{n:04d}")
    events.sort(key=lambda e: e["occurred_at"])
    return events


def _user_story(rng: random.Random, user_id: str) -> Iterator[dict[str, Any]]:
    context = {"country": rng.choice(COUNTRIES), "channel": rng.choice(CHANNELS)}
    first = START + timedelta(days=rng.randrange(WEEKS * 7 - 7), minutes=rng.randrange(24 * 60))
    end = START + timedelta(weeks=WEEKS)

    def fact(type_: str, at: datetime, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "type": type_,
            "user_id": user_id,
            "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data or {},
            "context": context,
        }

    if rng.random() < 0.7:
        yield fact("UserRegistered", first, {"channel": context["channel"]})
    engagement = rng.choice((0.5, 1.5, 3.5))  # visits per week: casual, regular, loyal
    at, orders = first, 0
    while at < end:
        yield fact("SessionStarted", at, {"platform": rng.choice(("ios", "android", "web"))})
        yield fact("SceneVisited", at + timedelta(minutes=1), {"scene": rng.choice(SCENES), "action": "view"})
        if rng.random() < 0.3:
            yield fact("ToolUsed", at + timedelta(minutes=2), {"tool": rng.choice(TOOLS)})
        if rng.random() < 0.35:
            orders += 1
            yield from _order(rng, fact, f"{user_id}-o{orders}", at + timedelta(minutes=5))
        at += timedelta(days=rng.expovariate(engagement / 7))
        if rng.random() < 0.08:  # churned
            break


def _order(
    rng: random.Random, fact: Callable[..., dict[str, Any]], order_id: str, at: datetime
) -> Iterator[dict[str, Any]]:
    amount = Decimal(rng.randrange(500, 20000)) / 100
    yield fact("OrderPlaced", at, {"order_id": order_id, "amount": str(amount), "currency": "EUR"})
    if rng.random() < 0.1:
        yield fact("OrderCancelled", at + timedelta(minutes=30), {"order_id": order_id})
        return
    yield fact("OrderPaid", at + timedelta(minutes=1), {"order_id": order_id, "amount": str(amount)})
    if rng.random() < 0.05:
        refund = (amount / 2).quantize(Decimal("0.01"))
        yield fact("OrderRefunded", at + timedelta(days=3), {"order_id": order_id, "amount": str(refund)})


def run_demo(settings: Settings, out: Callable[[str], None] = print) -> None:
    """Record the demo history into a fresh SQLite file, project it in process, print a summary."""
    path = Path.cwd() / "var" / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings = replace(settings, database_url=f"sqlite:///{path}", kafka_servers=(), elasticsearch_url=None)
    system = build_system(settings)
    try:
        raw = demo_events()
        started = time.perf_counter()
        for start in range(0, len(raw), 500):
            system.event_store.record([parse_envelope(e) for e in raw[start : start + 500]])
        recorded_s = time.perf_counter() - started
        started = time.perf_counter()
        LocalFollower(LogReader(system.event_store), system.runners).catch_up()
        projected_s = time.perf_counter() - started
        out(f"Cohortline demo — {path}")
        out(f"recorded {len(raw)} events in {recorded_s:.1f} s; projected them in {projected_s:.1f} s")
        _summary(system, out)
    finally:
        system.close()


def _summary(system: Any, out: Callable[[str], None]) -> None:
    c = users.c
    with system.engine.connect() as conn:
        total, registered, buyers, repeat, revenue = conn.execute(
            select(
                func.count(),
                func.count(c.signup_at),
                func.sum(func.cast(c.orders >= 1, type_=users.c.orders.type)),
                func.sum(func.cast(c.orders >= 2, type_=users.c.orders.type)),
                func.sum(c.net_revenue),
            )
        ).one()
        applied = progress(conn, "analytics", None)
        by_country = conn.execute(
            select(c.country, func.count(), func.sum(c.net_revenue))
            .group_by(c.country)
            .order_by(func.count().desc())
        ).all()
    out(f"read models at position {applied.position}, watermark {applied.watermark:%Y-%m-%d %H:%M} UTC")
    out(f"users: {total} ({registered} registered), customers: {buyers}, repeat customers: {repeat}")
    out(f"customers with 2+ orders: {repeat / buyers:.1%}" if buyers else "no customers yet")
    out(f"net revenue: EUR {Decimal(revenue or 0) / 10000:,.2f}")
    out(
        "by country:  "
        + "  ".join(f"{k} {n} users / EUR {Decimal(r or 0) / 10000:,.0f}" for k, n, r in by_country)
    )
    out("most recently active customers:")
    for user in system.search.search(UserQuery(min_orders=2, size=5)).users:
        out(
            f"  {user['user_id']}  {user['country']}  {user['orders']} orders  EUR {user['net_revenue']:>8}"
            f"  last active {user['last_active_at']}"
        )
