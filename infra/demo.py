"""`cohortline demo`: a small realistic shop history recorded and projected on the embedded default."""

from __future__ import annotations

import random
import time
from collections import Counter
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
from projections.activity import active_users
from projections.lifecycle import STATES, Thresholds, state
from projections.orders import repurchase
from projections.retention import retention
from projections.tracking import progress
from projections.users import users
from streams.local import LocalFollower

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
        LocalFollower(system.log_reader(), system.runners).catch_up()
        projected_s = time.perf_counter() - started
        out(f"Cohortline demo — {path}")
        out(f"recorded {len(raw)} events in {recorded_s:.1f} s; projected them in {projected_s:.1f} s")
        _summary(system, out)
    finally:
        system.close()


def _summary(system: Any, out: Callable[[str], None]) -> None:
    first, last = START.date(), (START + timedelta(weeks=WEEKS, days=-1)).date()
    with system.engine.connect() as conn:
        applied = progress(conn, "analytics", None)
        total, buyers, revenue = conn.execute(
            select(func.count(), func.count(users.c.first_order_at), func.sum(users.c.net_revenue))
        ).one()
        cohorts = retention(conn, "week", "first_seen", "active", "on", first, last, 7, applied.watermark)
        weekly = active_users(conn, "week", first, last, "active")
        repeat = repurchase(conn, first, last)
        rows = [dict(r) for r in conn.execute(select(users)).mappings()]
    states = Counter(
        state(r["first_seen_at"], r["last_active_at"], r["resurrected_on"], applied.watermark, Thresholds())
        for r in rows
    )
    out(f"read models at position {applied.position}, watermark {applied.watermark:%Y-%m-%d %H:%M} UTC")
    out(f"users: {total}, customers: {buyers}, net revenue: EUR {Decimal(revenue or 0) / 10000:,.2f}")
    out("")
    out("weekly retention (first seen cohort, any activity, share active in week k)")
    out("cohort        size   " + "".join(f"{'k=' + str(k):>7}" for k in range(8)))
    for row in cohorts:
        rates = "".join(f"{r:>7.0%}" for r in row["rates"])
        out(f"{row['cohort']}  {row['size']:>5}   {rates}")
    out("")
    out("weekly active users: " + "  ".join(f"{p['period'][5:]} {p['users']}" for p in weekly))
    out("lifecycle at the watermark: " + ", ".join(f"{k} {states[k]}" for k in STATES if states[k]))
    out(
        f"repurchase: {repeat['repeat_customers']} of {repeat['customers']} customers ordered again "
        f"({repeat['repurchase_rate']:.1%}); median {repeat['median_days_between_orders']} days between orders"
    )
