"""`cohortline demo`: a real shop's history (UCI Online Retail, shipped in data/) imported and projected on
the embedded default, and what the read models found; `--synthetic`: a small made-up shop history."""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select

from domain.envelope import parse_envelope
from infra.bootstrap import build_system
from infra.config import Settings
from infra.importers.loading import StoreSink, load, project
from infra.importers.online_retail import OnlineRetail
from projections.activity import active_users
from projections.campaigns import campaign_effect
from projections.features import feature_impact, feature_report
from projections.lifecycle import STATES, Thresholds, state
from projections.orders import repurchase
from projections.overview import overview
from projections.periods import end_of
from projections.retention import retention
from projections.rfm import SEGMENT_NAMES, rfm_cuts, segment
from projections.service import satisfaction
from projections.tracking import progress
from projections.users import users
from projections.value import revenue, user_revenue
from streams.local import LocalFollower

SHIPPED_DATA = Path(__file__).resolve().parents[1] / "data" / "online_retail" / "online_retail.csv.gz"
"""The copy of UCI Online Retail shipped with Cohortline (data/ beside the packages in a checkout)."""
START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
WEEKS = 8
USERS = 300
COUNTRIES = ("GB", "DE", "FR", "NL", "CN", "US")
CHANNELS = ("app", "web", "mini_program", "store")
SCENES = ("shopping", "social", "content")
TOOL_HABITS = {
    "check_in": (0.4, 0.8),
    "wishlist": (0.3, 0.3),
    "price_alert": (0.2, 0.15),
    "coupon_center": (0.25, 0.2),
}
"""tool → (share of users who take it up, chance they use it on a visit once they have)."""
CHURN_PER_VISIT = 0.08
CHECK_IN_CHURN_PER_VISIT = 0.02
"""A daily check-in habit keeps a user: they churn a quarter as often once they check in."""
ORDER_PER_VISIT = 0.35
WISHLIST_ORDER_PER_VISIT = 0.45
"""Users who keep a wishlist order more often once they have one."""


def demo_events(seed: int = 7) -> list[dict[str, Any]]:
    """Registrations, sessions, scene visits, tool use and orders of a few hundred users over
    several weeks, a campaign with a control group, and service tickets with ratings, in event-time
    order; deterministic for a seed."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(USERS):
        events += _user_story(rng, f"u{n:04d}")
    events += list(_campaign(random.Random(seed + 1), events))
    events += list(_tickets(random.Random(seed + 2), events))
    events.sort(key=lambda e: e["occurred_at"])
    return events


def _campaign(rng: random.Random, stories: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A spring incentive from week 2 to week 6: a third of the users seen by then are enrolled,
    half of them into control; the treatment group gets a 5 EUR coupon, and two in five of them
    order because of it within days (the rest redeem it on their next order, if any)."""
    starts, ends = START + timedelta(weeks=2), START + timedelta(weeks=6)
    campaign = {"campaign_id": "demo-spring", "name": "Spring incentive", "kind": "incentive"}
    yield _fact(
        "CampaignCreated",
        None,
        starts - timedelta(days=1),
        {},
        {**campaign, "starts_at": _text(starts), "ends_at": _text(ends)},
    )
    by_user: dict[str, list[dict[str, Any]]] = {}
    for event in stories:
        by_user.setdefault(event["user_id"], []).append(event)
    for user_id, mine in sorted(by_user.items()):
        seen = [e for e in mine if e["occurred_at"] < _text(ends)]
        if not seen or rng.random() >= 1 / 3:
            continue
        at = max(starts, _parse(min(e["occurred_at"] for e in seen))) + timedelta(hours=rng.randrange(1, 72))
        if at >= ends:
            continue
        group = "control" if rng.random() < 0.5 else "treatment"
        context = mine[0]["context"]
        yield _fact("CampaignEnrolled", user_id, at, context, {"campaign_id": "demo-spring", "group": group})
        if group == "control":
            continue
        coupon = f"{user_id}-demo-coupon"
        issued = {"coupon_id": coupon, "campaign_id": "demo-spring", "value": "5.00", "currency": "EUR"}
        yield _fact("CouponIssued", user_id, at, context, issued)
        if rng.random() < 0.4:  # the incentive works: an order it brought, the coupon redeemed on it
            order_id, placed = f"{user_id}-demo-incentive", at + timedelta(hours=rng.randrange(6, 6 * 24))
            amount = str(Decimal(rng.randrange(2000, 9000)) / 100)
            yield _fact(
                "SessionStarted", user_id, placed - timedelta(minutes=5), context, {"platform": "app"}
            )
            yield _fact(
                "OrderPlaced",
                user_id,
                placed,
                context,
                {"order_id": order_id, "amount": amount, "currency": "EUR"},
            )
            yield _fact(
                "OrderPaid",
                user_id,
                placed + timedelta(minutes=1),
                context,
                {"order_id": order_id, "amount": amount},
            )
            yield _fact(
                "CouponRedeemed", user_id, placed, context, {"coupon_id": coupon, "order_id": order_id}
            )
            continue
        later = [e for e in mine if e["type"] == "OrderPlaced" and e["occurred_at"] > _text(at)]
        if later:
            order = min(later, key=lambda e: e["occurred_at"])
            redeemed = {"coupon_id": coupon, "order_id": order["data"]["order_id"]}
            yield _fact("CouponRedeemed", user_id, _parse(order["occurred_at"]), context, redeemed)
    yield _fact("CampaignEnded", None, ends, {}, {"campaign_id": "demo-spring"})


def _tickets(rng: random.Random, stories: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One order in twelve brings a ticket: an agent replies within hours, most are resolved within
    two days, and most resolved tickets are rated (slow ones lower)."""
    for event in stories:
        if event["type"] != "OrderPlaced" or rng.random() >= 1 / 12:
            continue
        user_id, context = event["user_id"], event["context"]
        ticket = f"{event['data']['order_id']}-t"
        opened = _parse(event["occurred_at"]) + timedelta(days=rng.randrange(1, 5))
        yield _fact("TicketOpened", user_id, opened, context, {"ticket_id": ticket, "category": "delivery"})
        replied = opened + timedelta(minutes=rng.randrange(5, 8 * 60))
        yield _fact("TicketReplied", user_id, replied, context, {"ticket_id": ticket, "by": "agent"})
        if rng.random() < 0.1:
            continue
        hours = rng.expovariate(1 / 20)
        resolved = replied + timedelta(hours=hours)
        yield _fact("TicketResolved", user_id, resolved, context, {"ticket_id": ticket})
        if rng.random() < 0.7:
            score = max(1, min(5, round(rng.gauss(4.6 - hours / 25, 0.8))))
            rated = resolved + timedelta(hours=1)
            yield _fact("SatisfactionRated", user_id, rated, context, {"score": score, "ticket_id": ticket})


def _fact(
    type_: str, user_id: str | None, at: datetime, context: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    fact = {"type": type_, "occurred_at": _text(at), "data": data, "context": context}
    return fact if user_id is None else {**fact, "user_id": user_id}


def _text(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _user_story(rng: random.Random, user_id: str) -> Iterator[dict[str, Any]]:
    context = {"country": rng.choice(COUNTRIES), "channel": rng.choice(CHANNELS)}
    first = START + timedelta(days=rng.randrange(WEEKS * 7 - 7), minutes=rng.randrange(24 * 60))
    end = START + timedelta(weeks=WEEKS)

    def fact(type_: str, at: datetime, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return _fact(type_, user_id, at, context, data or {})

    if rng.random() < 0.7:
        yield fact("UserRegistered", first, {"channel": context["channel"]})
    engagement = rng.choice((0.5, 1.5, 3.5))  # visits per week: casual, regular, loyal
    favourite = rng.choice(SCENES)
    scene_weights = [3 if scene == favourite else 1 for scene in SCENES]
    takes_up = {
        tool: first + timedelta(days=rng.expovariate(1 / 3))
        for tool, (share, _) in TOOL_HABITS.items()
        if rng.random() < share
    }
    at, orders = first, 0
    while at < end:
        yield fact("SessionStarted", at, {"platform": rng.choice(("ios", "android", "web"))})
        scene = rng.choices(SCENES, scene_weights)[0]
        yield fact("SceneVisited", at + timedelta(minutes=1), {"scene": scene, "action": "view"})
        using = {t for t, since in takes_up.items() if since <= at and rng.random() < TOOL_HABITS[t][1]}
        for minute, tool in enumerate(sorted(using), start=2):
            yield fact("ToolUsed", at + timedelta(minutes=minute), {"tool": tool})
        wishlisted = "wishlist" in takes_up and takes_up["wishlist"] <= at
        if rng.random() < (WISHLIST_ORDER_PER_VISIT if wishlisted else ORDER_PER_VISIT):
            orders += 1
            yield from _order(rng, fact, f"{user_id}-o{orders}", at + timedelta(minutes=10))
        at += timedelta(days=rng.expovariate(engagement / 7))
        checks_in = "check_in" in takes_up and takes_up["check_in"] <= at
        if rng.random() < (CHECK_IN_CHURN_PER_VISIT if checks_in else CHURN_PER_VISIT):
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


def run_demo(
    settings: Settings,
    out: Callable[[str], None] = print,
    *,
    data: Path | None = None,
    synthetic: bool = False,
    bars: IO[str] | None = sys.stderr,
) -> Settings:
    """Import the real Online Retail history (`data`, default the shipped copy) into a fresh SQLite
    file, or with `synthetic` record the small made-up shop history; project it in process and print
    what the read models found. Progress bars go to `bars`. The settings that point at it."""
    path = Path.cwd() / "var" / "demo.db"
    if not synthetic:
        data = data or SHIPPED_DATA
        if not data.is_file():
            raise FileNotFoundError(
                f"{data} is missing: pass the Online Retail CSV with --data PATH, or run demo --synthetic"
            )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings = replace(
        settings, database_url=f"sqlite:///{path}", kafka_servers=(), elasticsearch_url=None, rate_limit=None
    )
    system = build_system(settings)
    try:
        if synthetic:
            _synthetic(system, path, out)
        else:
            assert data is not None
            _real(system, path, data, out, bars)
    finally:
        system.close()
    return settings


def _synthetic(system: Any, path: Path, out: Callable[[str], None]) -> None:
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
    _levers(system, out)
    _features(system, out)


def _real(system: Any, path: Path, data: Path, out: Callable[[str], None], bars: IO[str] | None) -> None:
    """`cohortline import online-retail` into the demo file, projected, and what it found."""
    imported = load(
        lambda: OnlineRetail(data), StoreSink(system.event_store), 1000, bars, "import online-retail"
    )
    projected = project(system, bars, batch_size=5000)  # a fresh file nobody else writes to
    out(f"Cohortline demo on real data — {path}")
    out(
        f"imported {imported.appended:,} events from {data.name} (UCI Online Retail, CC BY 4.0) in "
        f"{imported.seconds:.1f} s (read {imported.read_s:.1f} s, record "
        f"{imported.seconds - imported.read_s:.1f} s); projected them in {projected.seconds:.1f} s"
    )
    _real_report(system, out)


def _real_report(system: Any, out: Callable[[str], None]) -> None:
    """Monthly retention of the first-order cohorts, repurchase, RFM segments, and per month the
    active customers and net revenue."""
    with system.engine.connect() as conn:
        applied = progress(conn, "analytics", None)
        total, buyers = conn.execute(select(func.count(), func.count(users.c.first_order_at))).one()
        rows = [dict(r) for r in conn.execute(select(users)).mappings()]
        if not rows or applied.watermark is None:
            out("no customers in the data")
            return
        first, last = min(r["first_seen_at"] for r in rows).date(), applied.watermark.date()
        cohorts = retention(conn, "month", "first_order", "order", "on", first, last, 6, applied.watermark)
        monthly = active_users(conn, "month", first, last, "active")
        repeat = repurchase(conn, first, last)
        money = revenue(conn, "month", first, last)
        cuts = rfm_cuts(conn, system.settings.reporting_currency)
    segments = Counter(
        segment(*cuts.scores(r["last_order_at"], r["orders"], 0)[:2]) for r in rows if r["orders"]
    )
    out(f"read models at position {applied.position}, watermark {applied.watermark:%Y-%m-%d %H:%M} UTC")
    out(f"customers: {total:,}, of whom ordered: {buyers:,}")
    out("")
    out("monthly retention (first-order cohort, share ordering in month k; * month not over yet)")
    out("cohort     size  " + "".join(f"{'k=' + str(k):>7}" for k in range(7)))
    for row in cohorts:
        cells = "".join(
            f"{rate:>6.0%}{' ' if done else '*'}"
            for rate, done in zip(row["rates"], row["complete"], strict=True)
        )
        out(f"{row['cohort']}  {row['size']:>6}  {cells}")
    out("")
    out(
        f"repurchase: {repeat['repeat_customers']:,} of {repeat['customers']:,} customers ordered again "
        f"({_percent(repeat['repurchase_rate'])}); median {repeat['median_days_between_orders']} days between "
        "orders"
    )
    out("")
    out(f"RFM segments (recency and frequency scored by quintile among {cuts.customers:,} customers)")
    for name, shown in SEGMENT_NAMES.items():
        out(f"  {shown:<20} {segments[name]:>6,}")
    out("")
    out("per month: active customers, orders paid, net revenue (GBP)")
    for active, period in zip(monthly, money, strict=True):
        gbp = period["currencies"].get("GBP", {})
        partial = (
            "" if end_of("month", _month(period["period"])) <= applied.watermark else "  (month not over)"
        )
        out(
            f"  {period['period']}  {active['users']:>6,}  {gbp.get('orders_paid', 0):>6,}"
            f"  {Decimal(str(gbp.get('net', 0))):>14,.2f}{partial}"
        )


def _month(label: str) -> date:
    return date(int(label[:4]), int(label[5:7]), 1)


def _summary(system: Any, out: Callable[[str], None]) -> None:
    first, last = START.date(), (START + timedelta(weeks=WEEKS, days=-1)).date()
    with system.engine.connect() as conn:
        applied = progress(conn, "analytics", None)
        total, buyers = conn.execute(select(func.count(), func.count(users.c.first_order_at))).one()
        net = user_revenue.c
        revenue = conn.execute(
            select(net.currency, func.sum(net.net)).group_by(net.currency).order_by(net.currency)
        ).all()
        cohorts = retention(conn, "week", "first_seen", "active", "on", first, last, 7, applied.watermark)
        weekly = active_users(conn, "week", first, last, "active")
        repeat = repurchase(conn, first, last)
        rows = [dict(r) for r in conn.execute(select(users)).mappings()]
    states = Counter(
        state(r["first_seen_at"], r["last_active_at"], r["resurrected_on"], applied.watermark, Thresholds())
        for r in rows
    )
    out(f"read models at position {applied.position}, watermark {applied.watermark:%Y-%m-%d %H:%M} UTC")
    money = ", ".join(f"{currency} {Decimal(amount) / 10000:,.2f}" for currency, amount in revenue)
    out(f"users: {total}, customers: {buyers}, net revenue: {money or 'none'}")
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


def _levers(system: Any, out: Callable[[str], None]) -> None:
    """Which lever kept them: the campaign's uplift, service by month, and the four dimensions of
    the last four weeks against the four before."""
    last = (START + timedelta(weeks=WEEKS, days=-1)).date()
    with system.engine.connect() as conn:
        watermark = progress(conn, "analytics", None).watermark
        effect = campaign_effect(conn, "demo-spring", watermark)
        service = satisfaction(conn, "month", START.date(), last, watermark)
        dimensions = overview(conn, last - timedelta(days=27), last, watermark)
    assert effect is not None
    out("")
    out(f"campaign {effect['campaign']['name']!r}: treatment vs control (uplift, 95 % interval)")
    for name in ("ordered_7d", "ordered_30d", "active_after_30d"):
        treated, control = effect["groups"]["treatment"][name], effect["groups"]["control"][name]
        uplift = effect["uplift"][name]
        out(
            f"  {name:<17} {_percent(treated):>7} vs {_percent(control):>7}   {_signed(uplift['value'])}"
            f"  [{_interval(uplift)}]"
        )
    out(f"  coupons redeemed: {effect['groups']['treatment']['coupons_redeemed']}")
    out("")
    out("service by month: opened, resolved, median hours to resolve, ratings, CSAT")
    for row in service["series"]:
        hours = row["median_resolution_hours"]
        out(
            f"  {row['period']}  {row['opened']:>4} {row['resolved']:>4}  {'-' if hours is None else f'{hours:6.1f}'}"
            f"  {row['ratings']:>4}  {_percent(row['csat'])}"
        )
    out("")
    out("the last four weeks (and the four before): scale, efficiency, quality, value")
    now, before = dimensions, dimensions["previous"]
    for dimension, name in (
        ("scale", "active_users"),
        ("scale", "new_users"),
        ("efficiency", "repurchase_rate"),
        ("quality", "csat"),
        ("value", "net_revenue"),
        ("value", "arpu"),
    ):
        out(
            f"  {dimension:<10} {name:<16} {_figure(now[dimension][name]):>14}   ({_figure(before[dimension][name])})"
        )


def _features(system: Any, out: Callable[[str], None]) -> None:
    """Which scenes and tools users adopt and keep using, the check-in's own retention, and how its
    adopters compare with everyone else."""
    first, last = START.date(), (START + timedelta(weeks=WEEKS, days=-1)).date()
    with system.engine.connect() as conn:
        watermark = progress(conn, "analytics", None).watermark
        report = feature_report(conn, first, last, watermark)
        own = retention(conn, "week", "tool:check_in", "tool:check_in", "on", first, last, 7, watermark)
        impact = feature_impact(conn, "tool:check_in", first, last, watermark)
    out("")
    out("scenes and tools: adopted, users, uses, share of active users, used again after day 7")
    for row in report:
        out(
            f"  {row['feature']:<20} {row['adopted']:>5} {row['users']:>5} {row['uses']:>6}"
            f"  {_percent(row['share_of_active']):>6}  {_percent(row['repeat_7d']):>6}"
        )
    out("")
    out("check-in's own weekly retention (adoption week, share checking in again in week k)")
    for row in own:
        out(f"  {row['cohort']}  {row['size']:>4}   " + "".join(f"{r:>6.0%}" for r in row["rates"]))
    out("")
    adopters, others = impact["groups"]["adopters"], impact["groups"]["others"]
    out(
        f"check-in within 7 days of first seen: {adopters['users']} adopters vs {others['users']} others "
        f"({impact['note']})"
    )
    for name in ("retained_d30", "ordered_d30"):
        difference = impact["difference"][name]
        out(
            f"  {name:<14} {_percent(adopters[name]):>7} vs {_percent(others[name]):>7}"
            f"   {_signed(difference['value'])}  [{_interval(difference)}]"
        )


def _interval(difference: dict[str, Any]) -> str:
    """A share difference's 95 % interval in percentage points."""
    if difference["ci95"] is None:
        return "n/a"
    low, high = difference["ci95"]
    return f"{low * 100:+.1f} .. {high * 100:+.1f} pt"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _signed(share: float | None) -> str:
    return "  n/a" if share is None else f"{share * 100:+5.1f} pt"


def _figure(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{currency} {amount}" for currency, amount in value.items()) or "-"
    if isinstance(value, float):
        return _percent(value)
    return "-" if value is None else str(value)
