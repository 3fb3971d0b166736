"""Calendar periods in UTC event time (metrics.md "Time"): a day is a date, a week an ISO week
labelled by its Monday, a month a calendar month labelled YYYY-MM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")


def utc_date(moment: datetime) -> date:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def period_start(granularity: Granularity, day: date) -> date:
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_of(granularity: Granularity, moment: datetime) -> date:
    return period_start(granularity, utc_date(moment))


def shift(granularity: Granularity, period: date, steps: int) -> date:
    """The period `steps` after (or before, when negative) `period`."""
    if granularity == "day":
        return period + timedelta(days=steps)
    if granularity == "week":
        return period + timedelta(weeks=steps)
    months = period.year * 12 + period.month - 1 + steps
    return date(months // 12, months % 12 + 1, 1)


def offset(granularity: Granularity, start: date, later: date) -> int:
    """How many periods `later` is after `start` (both period starts)."""
    if granularity == "day":
        return (later - start).days
    if granularity == "week":
        return (later - start).days // 7
    return (later.year - start.year) * 12 + later.month - start.month


def periods_between(granularity: Granularity, first: date, last: date) -> Iterator[date]:
    """Every period from the one containing `first` to the one containing `last`."""
    current, end = period_start(granularity, first), period_start(granularity, last)
    while current <= end:
        yield current
        current = shift(granularity, current, 1)


def label(granularity: Granularity, period: date) -> str:
    return period.strftime("%Y-%m") if granularity == "month" else period.isoformat()


def end_of(granularity: Granularity, period: date) -> datetime:
    """The instant the period ends (the next one's first moment), in UTC."""
    following = shift(granularity, period, 1)
    return datetime(following.year, following.month, following.day, tzinfo=UTC)


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[from 00:00, to 24:00) UTC as naive datetimes, the form read models store times in."""
    after = end + timedelta(days=1)
    return datetime(start.year, start.month, start.day), datetime(after.year, after.month, after.day)
