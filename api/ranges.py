"""The date range every analytics question is asked over, and its bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, TypeVar

from flask import current_app
from pydantic import Field, model_validator
from sqlalchemy import Connection

from api.common import Day, Freshness
from api.declared import QueryError
from projections.periods import Granularity, periods_between

T = TypeVar("T")

MAX_PERIODS = {"day": 731, "week": 260, "month": 120}


class DateRange(Freshness):
    start: Day = Field(alias="from", description="first day of the range (inclusive)")
    end: Day = Field(alias="to", description="last day of the range (inclusive)")

    period_limit: ClassVar[bool] = True
    rules: ClassVar[Mapping[str, str]] = {
        "to": "must not be before from; the range holds at most "
        + ", ".join(f"{n} {g} periods" for g, n in MAX_PERIODS.items())
    }

    @property
    def period_length(self) -> Granularity:
        return getattr(self, "granularity", "day")

    @model_validator(mode="after")
    def _ordered_and_bounded(self) -> DateRange:
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
