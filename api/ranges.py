"""The date range every analytics question is asked over, and its bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import ClassVar, TypeVar

from flask import current_app
from pydantic import Field, model_validator
from sqlalchemy import Connection

from api.common import Day, Freshness
from api.declared import QueryError
from projections.periods import Granularity, periods_between

T = TypeVar("T")

MAX_PERIODS = {"day": 731, "week": 260, "month": 120}
FIRST_DAY, LAST_DAY = date(10, 1, 1), date(9998, 12, 31)
"""The dates a range may hold: room for the periods before it (lifecycle, the overview's previous
period) and after it (a period's end) within the calendar Python counts."""


class DateRange(Freshness):
    start: Day = Field(alias="from", description="first day of the range (inclusive)")
    end: Day = Field(alias="to", description="last day of the range (inclusive)")

    period_limit: ClassVar[bool] = True
    rules: ClassVar[Mapping[str, str]] = {
        "from": f"on or after {FIRST_DAY}",
        "to": f"on or before {LAST_DAY}, not before from; the range holds at most "
        + ", ".join(f"{n} {g} periods" for g, n in MAX_PERIODS.items()),
    }

    @property
    def period_length(self) -> Granularity:
        return getattr(self, "granularity", "day")

    @model_validator(mode="after")
    def _ordered_and_bounded(self) -> DateRange:
        if self.start < FIRST_DAY:
            raise QueryError("from", f"must be on or after {FIRST_DAY}")
        if self.end > LAST_DAY:
            raise QueryError("to", f"must be on or before {LAST_DAY}")
        if self.end < self.start:
            raise QueryError("to", "must not be before from")
        limit = MAX_PERIODS[self.period_length]
        if self.period_limit and self.periods_in_range() > limit:
            raise QueryError("to", f"at most {limit} {self.period_length} periods per query")
        return self

    def periods_in_range(self) -> int:
        return sum(1 for _ in periods_between(self.period_length, self.start, self.end))


def read(query: Callable[[Connection], T]) -> T:
    """`query` answered on a read-only connection to the read models."""
    with current_app.config["COHORTLINE"].read_engine.connect() as conn:
        return query(conn)
