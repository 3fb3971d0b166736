"""Lever queries latency: p50 / p95 of the value, campaign, service and overview routes over a
synthetic year of 20,000 users, each beside the core of the same answer computed by SQL over the
raw events in the same PostgreSQL database.

    eval "$(cohortline services env)"; .venv/bin/python bench/levers.py [--users 20000 --runs 100]

Builds the read models with the projection code itself (in batches, without Kafka) from a
synthetic year of sessions, scene and tool use, orders in EUR and GBP with payments and refunds,
four campaigns with treatment and control groups and their coupons, and support tickets with
ratings; copies the same events (type, user, time and data as JSON) into a plain table for the
baselines, indexed on user and time, type and time, and an order's id. Each route runs `--runs`
times through a running `serve`, each baseline 5 times (with PostgreSQL's JIT off: misestimated
joins on JSON fields would otherwise spend up to a second compiling). The program also checks that
each route's answer agrees with its baseline on the figures both compute."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import latencies, p95, reader_api  # noqa: E402
from domain.catalogue import TYPES  # noqa: E402
from infra import migrations  # noqa: E402
from infra.database import create_database_engine  # noqa: E402
from projections.analytics import AnalyticsProjection  # noqa: E402
from projections.money import money  # noqa: E402
from projections.records import EventRecord  # noqa: E402
from projections.runner import Delivery, ProjectionRunner  # noqa: E402
from projections.tracking import LOCAL_PARTITION  # noqa: E402
from tests.services import create_database, drop_database  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = (date(2024, 1, 1), date(2024, 12, 31))
QUARTER = (date(2024, 7, 1), date(2024, 9, 30))
BASELINE_RUNS = 5
CAMPAIGNS = (
    ("spring-check-in", "Spring check-in", "activity", datetime(2024, 1, 1, tzinfo=UTC)),
    ("member-benefits", "Member benefits", "benefit", datetime(2024, 4, 1, tzinfo=UTC)),
    ("summer-cashback", "Summer cashback", "incentive", datetime(2024, 7, 1, tzinfo=UTC)),
    ("winter-coupons", "Winter coupons", "incentive", datetime(2024, 10, 1, tzinfo=UTC)),
)
"""Four campaigns, one a quarter: every user arrives during one of them."""
ACTIVITY_TYPES = sorted(name for name, spec in TYPES.items() if spec.activity)


# --- the synthetic history ------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _campaign_ends(k: int) -> datetime:
    return CAMPAIGNS[k + 1][3] if k + 1 < len(CAMPAIGNS) else END


class History:
    """Numbers events in the order they are yielded, each in its catalogue stream."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: Counter[str] = Counter()

    def record(
        self, type_: str, user: str | None, at: datetime, context: dict[str, Any], data: dict[str, Any]
    ) -> EventRecord:
        self.position += 1
        key = TYPES[type_].stream_key
        stream = f"{TYPES[type_].stream}:{data[key] if key else user}"
        self.versions[stream] += 1
        return EventRecord(
            self.position,
            type_,
            1,
            f"e{self.position}",
            stream,
            self.versions[stream],
            user,
            at,
            at,
            context,
            data,
        )


def synthetic_events(users: int, seed: int = 17) -> Iterator[EventRecord]:
    """The campaigns, then each user's year: they arrive some day of it and come back a few times
    at decaying intervals; 30 % are enrolled into the campaign running when they arrive, half in
    treatment (a coupon and more orders in the next 30 days); then the ends of the campaigns that
    ended within the year."""
    rng = random.Random(seed)
    history = History()
    for k, (campaign_id, name, kind, starts_at) in enumerate(CAMPAIGNS):
        data = {
            "campaign_id": campaign_id,
            "name": name,
            "kind": kind,
            "starts_at": _rfc3339(starts_at),
            "ends_at": _rfc3339(_campaign_ends(k)),
        }
        yield history.record("CampaignCreated", None, starts_at - timedelta(days=7), {}, data)
    for n in range(users):
        user = f"u{n:06d}"
        country = rng.choices(("GB", "DE", "FR", "NL", "ES"), (35, 25, 20, 10, 10))[0]
        context = {"country": country, "channel": rng.choice(("app", "web"))}
        for at, type_, data in sorted(_user_year(rng, user, country), key=lambda e: e[0]):
            yield history.record(type_, user, at, context, data)
    for k, (campaign_id, *_) in enumerate(CAMPAIGNS):
        if _campaign_ends(k) < END:
            yield history.record("CampaignEnded", None, _campaign_ends(k), {}, {"campaign_id": campaign_id})


def _user_year(rng: random.Random, user: str, country: str) -> list[tuple[datetime, str, dict[str, Any]]]:
    events: list[tuple[datetime, str, dict[str, Any]]] = []

    def add(at: datetime, type_: str, data: dict[str, Any]) -> None:
        if at < END:
            events.append((at, type_, data))

    def later(at: datetime, hours: float) -> datetime:
        return at + timedelta(hours=hours)

    currency = "GBP" if country == "GB" else "EUR"
    at = START + timedelta(days=rng.random() * 365)
    if rng.random() < 0.7:
        add(at, "UserRegistered", {"channel": "app"})
    coupon, treated_until = None, at
    if rng.random() < 0.3:
        k = max(i for i, c in enumerate(CAMPAIGNS) if c[3] <= at)
        group = rng.choice(("treatment", "control"))
        enrolled_at = at + timedelta(minutes=2)
        add(enrolled_at, "CampaignEnrolled", {"campaign_id": CAMPAIGNS[k][0], "group": group})
        if group == "treatment":
            coupon, treated_until = f"{user}-k", enrolled_at + timedelta(days=30)
            data = {"coupon_id": coupon, "campaign_id": CAMPAIGNS[k][0], "value": Decimal("5.00")}
            add(enrolled_at, "CouponIssued", {**data, "currency": currency})
    for k in range(1 + min(int(rng.expovariate(1 / 6)), 60)):
        if at >= END:
            break
        add(at, "SessionStarted", {"session_id": f"{user}-s{k}"})
        t = at
        for _ in range(rng.randint(1, 2)):
            t += timedelta(seconds=rng.randrange(20, 600))
            if rng.random() < 0.75:
                scene = rng.choice(("shopping", "social", "content"))
                add(t, "SceneVisited", {"scene": scene, "action": rng.choice(("view", "like", "share"))})
            else:
                add(
                    t,
                    "ToolUsed",
                    {"tool": rng.choice(("check_in", "coupon_center", "price_alert", "wishlist"))},
                )
        treated = at < treated_until
        if rng.random() < (0.4 if treated else 0.22):
            t += timedelta(seconds=rng.randrange(30, 900))
            order_id, amount = f"{user}-o{k}", Decimal(rng.randrange(500, 20_000)) / 100
            placed: dict[str, Any] = {"order_id": order_id, "amount": amount, "currency": currency}
            redeemed = coupon is not None and treated and rng.random() < 0.6
            if redeemed:
                placed["coupon_id"] = coupon
            add(t, "OrderPlaced", placed)
            if redeemed:
                add(t + timedelta(seconds=1), "CouponRedeemed", {"coupon_id": coupon, "order_id": order_id})
                coupon = None
            if rng.random() < 0.92:
                paid_at = t + timedelta(seconds=rng.randrange(30, 1800))
                method = rng.choice(("card", "paypal", "bank_transfer"))
                add(paid_at, "OrderPaid", {"order_id": order_id, "amount": amount, "method": method})
                if rng.random() < 0.08:
                    refund = amount if rng.random() < 0.5 else (amount / 2).quantize(Decimal("0.01"))
                    refunded_at = paid_at + timedelta(days=rng.uniform(1, 20))
                    add(refunded_at, "OrderRefunded", {"order_id": order_id, "amount": refund})
        if rng.random() < 0.05:
            ticket = f"{user}-t{k}"
            opened = t + timedelta(seconds=rng.randrange(30, 900))
            category = rng.choice(("delivery", "refund", "account"))
            add(opened, "TicketOpened", {"ticket_id": ticket, "category": category})
            replied = later(opened, rng.expovariate(1 / 4))
            if rng.random() < 0.85:
                add(replied, "TicketReplied", {"ticket_id": ticket, "by": "agent"})
                if rng.random() < 0.4:
                    add(
                        later(replied, rng.expovariate(1 / 6)),
                        "TicketReplied",
                        {"ticket_id": ticket, "by": "customer"},
                    )
            if rng.random() < 0.9:
                resolved = later(replied, rng.expovariate(1 / 30))
                add(resolved, "TicketResolved", {"ticket_id": ticket})
                if rng.random() < 0.6:
                    score = rng.choices((1, 2, 3, 4, 5), (8, 7, 15, 35, 35))[0]
                    rated = later(resolved, rng.uniform(0.1, 48))
                    add(rated, "SatisfactionRated", {"score": score, "ticket_id": ticket})
        at += timedelta(days=rng.expovariate(1 / 12), minutes=rng.randrange(600))
    return events


# --- building -------------------------------------------------------------------------------------


def build(url: str, users: int) -> int:
    engine = create_database_engine(url)
    migrations.upgrade(engine)
    runner = ProjectionRunner(engine, AnalyticsProjection())
    raw = _connect(url)
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE raw_events (position bigint, user_id text, type text, occurred_at timestamptz, data jsonb)"
        )
    raw.commit()
    batch, count, started = [], 0, time.perf_counter()
    for event in synthetic_events(users):
        batch.append(event)
        if len(batch) == 5000:
            count += _load(runner, raw, batch)
            batch = []
            if count % 100_000 == 0:
                print(f"  {count:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    count += _load(runner, raw, batch)
    with raw.cursor() as cursor:
        cursor.execute("CREATE INDEX ON raw_events (user_id, occurred_at)")
        cursor.execute("CREATE INDEX ON raw_events (type, occurred_at)")
        cursor.execute("CREATE INDEX ON raw_events ((data->>'order_id')) WHERE type = 'OrderPlaced'")
    raw.commit()
    raw.autocommit = True
    with raw.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    raw.close()
    engine.dispose()
    return count


def _load(runner: ProjectionRunner, raw, batch: list[EventRecord]) -> int:
    runner.process([Delivery(LOCAL_PARTITION, e.position, None, e) for e in batch])
    buffer = io.StringIO("".join(_raw_row(e) for e in batch))
    with raw.cursor() as cursor:
        cursor.copy_expert("COPY raw_events FROM STDIN", buffer)
    raw.commit()
    return len(batch)


def _raw_row(e: EventRecord) -> str:
    data = json.dumps(e.data, default=str, separators=(",", ":")).replace("\\", "\\\\")
    user = e.user_id if e.user_id is not None else "\\N"
    return f"{e.position}\t{user}\t{e.type}\t{e.occurred_at.isoformat()}\t{data}\n"


def _connect(url: str, options: str = ""):
    return psycopg2.connect(
        url.replace("postgresql+psycopg2://", "postgresql://"), options=f"-c timezone=UTC {options}"
    )


# --- the routes and their baselines ---------------------------------------------------------------

SIGNED_AMOUNT = "CASE WHEN e.type = 'OrderPaid' THEN 1 ELSE -1 END * (e.data->>'amount')::numeric"
ORDER_OF_PAYMENT = "JOIN raw_events p ON p.type = 'OrderPlaced' AND p.data->>'order_id' = e.data->>'order_id'"

REVENUE_SQL = f"""
SELECT to_char(date_trunc('month', e.occurred_at), 'YYYY-MM'), p.data->>'currency',
       coalesce(sum((e.data->>'amount')::numeric) FILTER (WHERE e.type = 'OrderPaid'), 0),
       coalesce(sum((e.data->>'amount')::numeric) FILTER (WHERE e.type = 'OrderRefunded'), 0)
FROM raw_events e {ORDER_OF_PAYMENT}
WHERE e.type IN ('OrderPaid', 'OrderRefunded') AND e.occurred_at >= %(first)s AND e.occurred_at < %(after)s
GROUP BY 1, 2
"""

LTV_SQL = f"""
WITH members AS (
    SELECT user_id, date_trunc('month', min(occurred_at)) AS cohort FROM raw_events
    WHERE user_id IS NOT NULL GROUP BY user_id
    HAVING min(occurred_at) >= %(first)s AND min(occurred_at) < %(after)s
), sizes AS (
    SELECT cohort, count(*) AS size FROM members GROUP BY cohort
), spent AS (
    SELECT m.cohort, p.data->>'currency' AS currency, date_trunc('month', e.occurred_at) AS period,
           sum({SIGNED_AMOUNT}) AS net
    FROM members m
    JOIN raw_events e ON e.user_id = m.user_id AND e.type IN ('OrderPaid', 'OrderRefunded')
    {ORDER_OF_PAYMENT}
    WHERE e.occurred_at >= m.cohort AND e.occurred_at < %(after)s
    GROUP BY 1, 2, 3
)
SELECT to_char(cohort, 'YYYY-MM'), size, currency, to_char(period, 'YYYY-MM'), net
FROM sizes LEFT JOIN spent USING (cohort)
"""

CAMPAIGNS_SQL = """
WITH members AS (
    SELECT data->>'campaign_id' AS campaign_id,
           count(*) FILTER (WHERE data->>'group' = 'treatment') AS treatment,
           count(*) FILTER (WHERE data->>'group' = 'control') AS control
    FROM raw_events WHERE type = 'CampaignEnrolled' GROUP BY 1
), ended AS (
    SELECT DISTINCT data->>'campaign_id' AS campaign_id FROM raw_events WHERE type = 'CampaignEnded'
)
SELECT c.data->>'campaign_id', c.data->>'name', c.data->>'kind', (c.data->>'starts_at')::timestamptz AS starts_at,
       (c.data->>'ends_at')::timestamptz, e.campaign_id IS NOT NULL,
       coalesce(m.treatment, 0), coalesce(m.control, 0)
FROM raw_events c
LEFT JOIN members m ON m.campaign_id = c.data->>'campaign_id'
LEFT JOIN ended e ON e.campaign_id = c.data->>'campaign_id'
WHERE c.type = 'CampaignCreated'
ORDER BY starts_at, 1
"""

EFFECT_MEMBERS_SQL = """
WITH members AS (
    SELECT user_id, min(data->>'group') AS grp, min(occurred_at) AS enrolled_at FROM raw_events
    WHERE type = 'CampaignEnrolled' AND data->>'campaign_id' = %(campaign)s GROUP BY user_id
)
SELECT m.grp, count(*), count(*) FILTER (WHERE EXISTS (
    SELECT 1 FROM raw_events o WHERE o.user_id = m.user_id AND o.type = 'OrderPlaced'
      AND o.occurred_at >= m.enrolled_at AND o.occurred_at < m.enrolled_at + interval '30 days'))
FROM members m GROUP BY m.grp
"""

EFFECT_REVENUE_SQL = f"""
WITH members AS (
    SELECT user_id, min(data->>'group') AS grp, min(occurred_at) AS enrolled_at FROM raw_events
    WHERE type = 'CampaignEnrolled' AND data->>'campaign_id' = %(campaign)s GROUP BY user_id
)
SELECT m.grp, p.data->>'currency', sum({SIGNED_AMOUNT})
FROM members m
JOIN raw_events e ON e.user_id = m.user_id AND e.type IN ('OrderPaid', 'OrderRefunded')
    AND e.occurred_at >= m.enrolled_at AND e.occurred_at < m.enrolled_at + interval '30 days'
{ORDER_OF_PAYMENT}
GROUP BY 1, 2
"""

SATISFACTION_SQL = """
WITH tickets AS (
    SELECT data->>'ticket_id' AS ticket_id,
           min(occurred_at) FILTER (WHERE type = 'TicketOpened') AS opened_at,
           min(occurred_at) FILTER (WHERE type = 'TicketResolved') AS resolved_at
    FROM raw_events WHERE type IN ('TicketOpened', 'TicketResolved') GROUP BY 1
), opened AS (
    SELECT date_trunc('month', opened_at) AS period, count(*) AS opened FROM tickets
    WHERE opened_at >= %(first)s AND opened_at < %(after)s GROUP BY 1
), resolved AS (
    SELECT date_trunc('month', resolved_at) AS period, count(*) AS resolved,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS median_hours,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours
    FROM (
        SELECT resolved_at, extract(epoch FROM resolved_at - opened_at)::float8 / 3600 AS hours FROM tickets
        WHERE opened_at IS NOT NULL AND resolved_at >= %(first)s AND resolved_at < %(after)s
    ) AS durations
    GROUP BY 1
)
SELECT to_char(period, 'YYYY-MM'), coalesce(opened, 0), coalesce(resolved, 0), median_hours, p90_hours
FROM opened FULL JOIN resolved USING (period)
"""

OVERVIEW_ACTIVE_SQL = """
WITH active AS (
    SELECT user_id, bool_or(occurred_at >= %(start)s) AS now, bool_or(occurred_at < %(start)s) AS before
    FROM raw_events
    WHERE occurred_at >= %(previous)s AND occurred_at < %(after)s AND user_id IS NOT NULL
      AND (type = ANY(%(activity)s) OR (type = 'TicketReplied' AND data->>'by' = 'customer'))
    GROUP BY user_id
)
SELECT count(*) FILTER (WHERE now), count(*) FILTER (WHERE before), count(*) FILTER (WHERE now AND before)
FROM active
"""

OVERVIEW_REVENUE_SQL = f"""
SELECT p.data->>'currency', sum({SIGNED_AMOUNT})
FROM raw_events e {ORDER_OF_PAYMENT}
WHERE e.type IN ('OrderPaid', 'OrderRefunded') AND e.occurred_at >= %(start)s AND e.occurred_at < %(after)s
GROUP BY 1
"""


def _cents(amount: Any, members: int = 1) -> str:
    return money(Fraction(amount) / members)


def _bounds(first: date, last: date) -> dict[str, datetime]:
    return {
        "first": datetime(first.year, first.month, first.day, tzinfo=UTC),
        "after": datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
    }


def revenue_route(answer: dict[str, Any]) -> Any:
    return {
        (period["period"], currency): (figures["paid"], figures["refunded"])
        for period in answer["series"]
        for currency, figures in period["currencies"].items()
    }


def revenue_baseline(cursor) -> Any:
    cursor.execute(REVENUE_SQL, _bounds(*YEAR))
    return {(period, c): (_cents(paid), _cents(refunded)) for period, c, paid, refunded in cursor.fetchall()}


def ltv_route(answer: dict[str, Any]) -> Any:
    return {
        c["cohort"]: (c["size"], {currency: amounts[-1] for currency, amounts in c["currencies"].items()})
        for c in answer["cohorts"]
    }


def ltv_baseline(cursor) -> Any:
    cursor.execute(LTV_SQL, _bounds(*YEAR))
    sizes: dict[str, int] = {}
    spent: dict[str, Counter[str]] = {}
    for cohort, size, currency, _period, net in cursor.fetchall():
        sizes[cohort] = size
        if currency is not None:
            spent.setdefault(cohort, Counter())[currency] += net
    return {
        cohort: (size, {c: _cents(net, size) for c, net in spent.get(cohort, {}).items()})
        for cohort, size in sizes.items()
    }


def campaigns_route(answer: dict[str, Any]) -> Any:
    return [
        (c["campaign_id"], c["ended"], c["members"]["treatment"], c["members"]["control"])
        for c in answer["campaigns"]
    ]


def campaigns_baseline(cursor) -> Any:
    cursor.execute(CAMPAIGNS_SQL)
    return [(row[0], row[5], row[6], row[7]) for row in cursor.fetchall()]


def effect_route(answer: dict[str, Any]) -> Any:
    return {
        group: (figures["members"], figures["ordered_30d"], figures["net_revenue_30d"])
        for group, figures in answer["groups"].items()
    }


def effect_baseline(cursor, campaign_id: str) -> Any:
    cursor.execute(EFFECT_MEMBERS_SQL, {"campaign": campaign_id})
    members = {group: (n, ordered) for group, n, ordered in cursor.fetchall()}
    cursor.execute(EFFECT_REVENUE_SQL, {"campaign": campaign_id})
    spent = {(group, currency): net for group, currency, net in cursor.fetchall()}
    currencies = sorted({currency for _, currency in spent})
    found = {}
    for group in ("treatment", "control"):
        n, ordered = members.get(group, (0, 0))
        means = {c: _cents(spent.get((group, c), 0), n) for c in currencies} if n else {}
        found[group] = (n, round(ordered / n, 4) if n else None, means)
    return found


def satisfaction_route(answer: dict[str, Any]) -> Any:
    return {
        p["period"]: (p["opened"], p["resolved"], p["median_resolution_hours"], p["p90_resolution_hours"])
        for p in answer["series"]
        if p["opened"] or p["resolved"]
    }


def satisfaction_baseline(cursor) -> Any:
    cursor.execute(SATISFACTION_SQL, _bounds(*YEAR))
    return {
        period: (opened, resolved, _hours(median), _hours(p90))
        for period, opened, resolved, median, p90 in cursor.fetchall()
    }


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def overview_route(answer: dict[str, Any]) -> Any:
    scale = answer["scale"]
    return (
        scale["active_users"],
        answer["previous"]["scale"]["active_users"],
        scale["retained_users"],
        answer["value"]["net_revenue"],
    )


def overview_baseline(cursor) -> Any:
    first, last = QUARTER
    bounds = _bounds(first, last)
    previous = bounds["first"] - (bounds["after"] - bounds["first"])
    cursor.execute(
        OVERVIEW_ACTIVE_SQL,
        {
            "start": bounds["first"],
            "after": bounds["after"],
            "previous": previous,
            "activity": ACTIVITY_TYPES,
        },
    )
    active, before, retained = cursor.fetchone()
    cursor.execute(OVERVIEW_REVENUE_SQL, {"start": bounds["first"], "after": bounds["after"]})
    return active, before, retained, {c: _cents(net) for c, net in sorted(cursor.fetchall())}


@dataclass
class Lever:
    label: str
    path: str
    params: dict[str, str]
    digest: Callable[[dict[str, Any]], Any]
    """the route's answer reduced to what the baseline computes"""
    baseline: Callable[[Any], Any]
    """runs the baseline SQL on a cursor and returns the same reduction"""


def _range(first: date, last: date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def levers(campaign_id: str) -> list[Lever]:
    return [
        Lever(
            "GET /v1/value/revenue",
            "/v1/value/revenue",
            {"granularity": "month", **_range(*YEAR)},
            revenue_route,
            revenue_baseline,
        ),
        Lever(
            "GET /v1/value/ltv",
            "/v1/value/ltv",
            {"granularity": "month", "cohort": "first_seen", **_range(*YEAR)},
            ltv_route,
            ltv_baseline,
        ),
        Lever("GET /v1/campaigns", "/v1/campaigns", {}, campaigns_route, campaigns_baseline),
        Lever(
            "GET /v1/campaigns/<id>/effect",
            f"/v1/campaigns/{campaign_id}/effect",
            {},
            effect_route,
            lambda cursor: effect_baseline(cursor, campaign_id),
        ),
        Lever(
            "GET /v1/service/satisfaction",
            "/v1/service/satisfaction",
            {"granularity": "month", **_range(*YEAR)},
            satisfaction_route,
            satisfaction_baseline,
        ),
        Lever("GET /v1/overview", "/v1/overview", _range(*QUARTER), overview_route, overview_baseline),
    ]


def _close(a: Any, b: Any) -> bool:
    """Equal, but for hours rounded to 2 places in two ways (a float sum in Python, one in PostgreSQL)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 0.0101
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if not os.environ.get("COHORTLINE_DATABASE_URL"):
        raise SystemExit(
            'COHORTLINE_DATABASE_URL is not set: run `cohortline services up` and `eval "$(cohortline services env)"`'
        )
    url = create_database(os.environ["COHORTLINE_DATABASE_URL"]).replace(
        "postgresql://", "postgresql+psycopg2://"
    )
    try:
        started = time.perf_counter()
        count = build(url, args.users)
        built = time.perf_counter() - started
        print(f"built read models and raw table: {count:,} events, {args.users:,} users in {built:.0f} s")
        answers: dict[str, Any] = {}
        route_ms: dict[str, list[float]] = {}
        with reader_api(url, "bench-levers") as (base, session):

            def get(path: str, params: dict[str, str]) -> dict[str, Any]:
                response = session.get(f"{base}{path}", params=params, timeout=120)
                assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:500]}"
                return response.json()

            listed = get("/v1/campaigns", {})["campaigns"]
            largest = max(listed, key=lambda c: c["members"]["treatment"] + c["members"]["control"])
            chosen = levers(largest["campaign_id"])
            for lever in chosen:
                answers[lever.label] = get(lever.path, lever.params)
                route_ms[lever.label] = latencies(
                    lambda lever=lever: get(lever.path, lever.params), args.runs
                )
        raw = _connect(url, "-c jit=off")
        baseline_ms: dict[str, list[float]] = {}
        differences = []
        for lever in chosen:
            with raw.cursor() as cursor:
                expected = lever.baseline(cursor)
                baseline_ms[lever.label] = latencies(
                    lambda lever=lever, c=cursor: lever.baseline(c), BASELINE_RUNS
                )
            got = lever.digest(answers[lever.label])
            if not _close(got, expected):
                differences.append(
                    f"  {lever.label}: route {got!r}\n  {'':<{len(lever.label)}}  baseline {expected!r}"
                )
        raw.close()
    finally:
        drop_database(url.replace("postgresql+psycopg2://", "postgresql://"))
    members = largest["members"]["treatment"] + largest["members"]["control"]
    print(
        f"{args.users:,} users, {count:,} events over 2024; revenue, LTV and satisfaction monthly over the year,\n"
        f"the overview over {QUARTER[0]:%Y-%m-%d}..{QUARTER[1]:%Y-%m-%d}, the effect of {largest['campaign_id']} "
        f"({members:,} members)"
    )
    print(
        f"{'':<32} {f'SQL over the raw events, {BASELINE_RUNS} runs':<36}the route through serve, {args.runs} runs"
    )
    for lever in chosen:
        sql_ms, api_ms = baseline_ms[lever.label], route_ms[lever.label]
        print(
            f"{lever.label:<32} p50 {statistics.median(sql_ms):>8.1f} ms   p95 {p95(sql_ms):>8.1f} ms   "
            f"p50 {statistics.median(api_ms):>8.1f} ms   p95 {p95(api_ms):>8.1f} ms"
        )
    if differences:
        print("answers that differ from their baselines:\n" + "\n".join(differences))
    else:
        print("every route's answer agrees with its baseline on the figures both compute")


if __name__ == "__main__":
    main()
