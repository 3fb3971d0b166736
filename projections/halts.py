"""Projections halted by an unexpected error in Cohortline's own code.

A halt is kept per projection and source partition, at the position of the event the projection
failed on, so every process (the API's status, the operators) can report it. The projection applies
nothing more until its process restarts and tries that event again; an apply that passes the
position clears the halt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    or_,
    select,
)

from projections.failures import storable
from projections.schema import metadata, naive_utc
from projections.sql import upsert

halts = Table(
    "projection_halts",
    metadata,
    Column("projection", String(32), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
    Column("error", Text, nullable=False),
    Column("since", DateTime(), nullable=False),
)


@dataclass(frozen=True)
class Halt:
    projection: str
    partition: int
    position: int
    error: str
    since: datetime


class ProjectionHalted(Exception):
    """The projection stopped at an event it failed on unexpectedly; it applies nothing more."""

    def __init__(self, halt: Halt):
        super().__init__(
            f"projection {halt.projection} halted at partition {halt.partition}, "
            f"position {halt.position}: {halt.error}"
        )
        self.halt = halt


def record_halt(engine: Engine, halt: Halt) -> Halt:
    """Persist `halt`; returns it as kept (a halt at the same place keeps its first `since`)."""
    with engine.begin() as conn:
        stmt = upsert(conn, halts).values(
            projection=halt.projection,
            partition=halt.partition,
            position=halt.position,
            error=storable(halt.error),
            since=naive_utc(halt.since),
        )
        same_place = halts.c.position == stmt.excluded.position
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[halts.c.projection, halts.c.partition],
                set_={
                    "position": stmt.excluded.position,
                    "error": stmt.excluded.error,
                    "since": case((same_place, halts.c.since), else_=stmt.excluded.since),
                },
            )
        )
        kept = conn.execute(
            select(halts).where(halts.c.projection == halt.projection, halts.c.partition == halt.partition)
        ).one()
    return _halt(kept._mapping)


def clear_passed(conn: Connection, projection: str, positions: Mapping[int, int]) -> None:
    """Inside an apply's transaction: forget the halts that its new positions have passed."""
    passed = [and_(halts.c.partition == p, halts.c.position <= at) for p, at in positions.items()]
    if passed:
        conn.execute(halts.delete().where(halts.c.projection == projection, or_(*passed)))


def halts_of(conn: Connection, projection: str) -> list[Halt]:
    """The projection's halts, oldest first."""
    query = select(halts).where(halts.c.projection == projection).order_by(halts.c.since, halts.c.partition)
    return [_halt(row) for row in conn.execute(query).mappings()]


def _halt(row: Mapping[str, Any]) -> Halt:
    return Halt(row["projection"], row["partition"], row["position"], row["error"], row["since"])
