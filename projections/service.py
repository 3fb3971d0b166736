"""Customer service, the lever of service (metrics.md "Customer service"): each ticket's opening,
first agent response and resolution, and every satisfaction rating; the satisfaction answer is read
from them.

- `rm_tickets`: per ticket the earliest `TicketOpened`, agent `TicketReplied` and `TicketResolved`
  event times (each the earliest seen, so arrival order does not matter);
- `rm_ratings`: every `SatisfactionRated`: who, the score, when."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, DateTime, Index, Integer, String, Table, or_, select

from projections.activity import last_active_times
from projections.intervals import share
from projections.orders import percentile
from projections.periods import (
    Granularity,
    day_bounds,
    end_of,
    label,
    period_of,
    period_start,
    periods_between,
)
from projections.records import EventRecord
from projections.schema import aware_utc, least, metadata, naive_utc
from projections.sql import upsert, upsert_rows

MOMENTS = ("opened_at", "first_response_at", "resolved_at")
SCORE_BUCKETS = {"1-2": (1, 2), "3": (3,), "4-5": (4, 5)}
MATURITY = timedelta(days=30)

tickets = Table(
    "rm_tickets",
    metadata,
    Column("ticket_id", String(128), primary_key=True),
    Column("opened_at", DateTime()),
    Column("first_response_at", DateTime()),
    Column("resolved_at", DateTime()),
    Index("ix_rm_tickets_opened", "opened_at"),
    Index("ix_rm_tickets_first_response", "first_response_at"),
    Index("ix_rm_tickets_resolved", "resolved_at"),
)

ratings = Table(
    "rm_ratings",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(128), nullable=False),
    Column("score", Integer, nullable=False),
    Column("occurred_at", DateTime(), nullable=False, index=True),
)


def apply_service(conn: Connection, events: Sequence[EventRecord]) -> None:
    _write_tickets(conn, events)
    upsert_rows(
        conn,
        ratings,
        [
            {
                "position": e.position,
                "user_id": e.user_id,
                "score": e.data["score"],
                "occurred_at": naive_utc(e.occurred_at),
            }
            for e in events
            if e.type == "SatisfactionRated"
        ],
        None,
    )


def _moment(event: EventRecord) -> str | None:
    if event.type == "TicketOpened":
        return "opened_at"
    if event.type == "TicketResolved":
        return "resolved_at"
    if event.type == "TicketReplied" and event.data.get("by") == "agent":
        return "first_response_at"
    return None


def _write_tickets(conn: Connection, events: Sequence[EventRecord]) -> None:
    """Keep each ticket's earliest time of each moment."""
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        moment = _moment(e)
        if moment is None:
            continue
        row = rows.setdefault(
            e.data["ticket_id"], {"ticket_id": e.data["ticket_id"], **dict.fromkeys(MOMENTS)}
        )
        at = naive_utc(e.occurred_at)
        row[moment] = at if row[moment] is None else min(row[moment], at)
    if not rows:
        return
    statement = upsert(conn, tickets)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[tickets.c.ticket_id],
            set_={m: least(tickets.c[m], statement.excluded[m]) for m in MOMENTS},
        ),
        [rows[key] for key in sorted(rows)],
    )


def satisfaction(
    conn: Connection, granularity: Granularity, start: date, end: date, watermark: datetime | None
) -> dict[str, Any]:
    """Per period of the range (whole periods): tickets opened and resolved, resolution and
    first-response hours, ratings, mean score and CSAT; then retention by score bucket over the
    ratings in the range."""
    first, _ = day_bounds(period_start(granularity, start), end)
    after = naive_utc(end_of(granularity, period_start(granularity, end)))
    t = tickets.c
    touching = select(tickets).where(
        t.opened_at.isnot(None), or_(*(t[m].between(first, after) for m in MOMENTS))
    )
    opened: Counter[date] = Counter()
    resolution: dict[date, list[float]] = defaultdict(list)
    response: dict[date, list[float]] = defaultdict(list)
    for ticket in conn.execute(touching).mappings():
        start_at = ticket["opened_at"]
        opened[period_of(granularity, start_at)] += 1
        if ticket["resolved_at"] is not None:
            resolution[period_of(granularity, ticket["resolved_at"])].append(
                _hours(ticket["resolved_at"], start_at)
            )
        if ticket["first_response_at"] is not None:
            response[period_of(granularity, ticket["first_response_at"])].append(
                _hours(ticket["first_response_at"], start_at)
            )
    scores: dict[date, list[int]] = defaultdict(list)
    for _, score, at in _ratings(conn, first, after):
        scores[period_of(granularity, at)].append(score)
    series = []
    for period in periods_between(granularity, start, end):
        resolved, responded, rated = sorted(resolution[period]), sorted(response[period]), scores[period]
        series.append(
            {
                "period": label(granularity, period),
                "opened": opened[period],
                "resolved": len(resolved),
                "median_resolution_hours": percentile(resolved, 0.5),
                "p90_resolution_hours": percentile(resolved, 0.9),
                "median_first_response_hours": percentile(responded, 0.5),
                "ratings": len(rated),
                "avg_score": round(sum(rated) / len(rated), 4) if rated else None,
                "csat": share(sum(1 for s in rated if s >= 4), len(rated)),
            }
        )
    return {"series": series, "retention_by_score": retention_by_score(conn, start, end, watermark)}


def retention_by_score(
    conn: Connection, start: date, end: date, watermark: datetime | None
) -> list[dict[str, Any]]:
    """Per score bucket: the ratings in the range, those 30 days old at the watermark, and the share
    of those whose user was active on or after day 30 after rating."""
    rated = [(user, score, aware_utc(at)) for user, score, at in _ratings(conn, *day_bounds(start, end))]
    last_active = last_active_times(conn, {user for user, _, _ in rated})
    found = []
    for bucket, scores in SCORE_BUCKETS.items():
        mine = [(user, at) for user, score, at in rated if score in scores]
        mature = [(user, at) for user, at in mine if watermark is not None and at + MATURITY <= watermark]
        retained = sum(1 for user, at in mature if user in last_active and last_active[user] >= at + MATURITY)
        found.append(
            {
                "bucket": bucket,
                "ratings": len(mine),
                "mature": len(mature),
                "retained_30d": share(retained, len(mature)),
            }
        )
    return found


def csat(conn: Connection, start: date, end: date) -> float | None:
    """The share of the ratings in the range with score 4 or 5."""
    scores = [score for _, score, _ in _ratings(conn, *day_bounds(start, end))]
    return share(sum(1 for s in scores if s >= 4), len(scores))


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _ratings(conn: Connection, first: datetime, after: datetime) -> list[tuple[str, int, datetime]]:
    """(user, score, time) of the ratings in [first, after)."""
    r = ratings.c
    query = select(r.user_id, r.score, r.occurred_at).where(r.occurred_at >= first, r.occurred_at < after)
    return [tuple(row) for row in conn.execute(query)]
