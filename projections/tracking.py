"""How far each projection has applied the log, per source partition, kept in the same
transaction as the read-model writes it covers.

Positions within one partition only grow (the relay publishes in log order and a user's events
share a partition), so an event at or below its partition's tracked position was applied already:
redeliveries, by Kafka or by a relay that restarted, change nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, Connection, DateTime, Integer, String, Table, literal, select

from projections.schema import aware_utc, greatest, metadata, naive_utc
from projections.sql import upsert

LOCAL_PARTITION = -1
"""The partition of the in-process follower, which reads the log itself, in order."""

tracking = Table(
    "projection_tracking",
    metadata,
    Column("projection", String(32), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
    Column("kafka_offset", BigInteger, nullable=True),
    Column("watermark", DateTime(), nullable=True),
)


def lock_positions(conn: Connection, projection: str, partitions: set[int]) -> dict[int, int]:
    """The tracked positions of `partitions`, locked until the transaction ends (PostgreSQL) so two
    workers never apply the same events concurrently."""
    query = select(tracking.c.partition, tracking.c.position).where(
        tracking.c.projection == projection, tracking.c.partition.in_(sorted(partitions))
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = {row.partition: row.position for row in conn.execute(query)}
    missing = [p for p in partitions if p not in found]
    if missing:
        _insert_missing(conn, projection, missing)
        return lock_positions(conn, projection, partitions)
    return found


def _insert_missing(conn: Connection, projection: str, partitions: list[int]) -> None:
    rows = [{"projection": projection, "partition": p, "position": 0} for p in partitions]
    conn.execute(upsert(conn, tracking).on_conflict_do_nothing(), rows)


def advance(
    conn: Connection,
    projection: str,
    positions: Mapping[int, tuple[int, int | None]],
    watermark: datetime | None,
) -> None:
    """Record `partition → (position, kafka offset)` for rows locked by `lock_positions`, and raise
    their watermark (the greatest event time applied) to `watermark`."""
    for partition, (position, offset) in positions.items():
        values: dict[str, object] = {"position": position, "kafka_offset": offset}
        if watermark is not None:
            values["watermark"] = greatest(tracking.c.watermark, literal(naive_utc(watermark), DateTime()))
        conn.execute(
            tracking.update()
            .where(tracking.c.projection == projection, tracking.c.partition == partition)
            .values(**values)
        )


def positions(conn: Connection, projection: str) -> dict[int, int]:
    query = select(tracking.c.partition, tracking.c.position).where(tracking.c.projection == projection)
    return {row.partition: row.position for row in conn.execute(query)}


@dataclass(frozen=True)
class Progress:
    position: int
    """Every event at or below this log position has been applied."""
    watermark: datetime | None
    version: int = 0
    """Grows whenever the projection applies anything (the sum of its partitions' positions)."""


def progress(conn: Connection, projection: str, kafka_partitions: int | None) -> Progress:
    """How far `projection` has applied the log: in process, its one position; from Kafka, the
    lowest position over all partitions (each advanced by the relay's watermarks)."""
    rows = {
        row.partition: row
        for row in conn.execute(select(tracking).where(tracking.c.projection == projection))
    }
    watermark = max((r.watermark for r in rows.values() if r.watermark), default=None)
    version = sum(r.position for r in rows.values())
    if kafka_partitions is None:
        local = rows.get(LOCAL_PARTITION)
        return Progress(local.position if local else 0, aware_utc(watermark), version)
    lowest = min((rows[p].position if p in rows else 0 for p in range(kafka_partitions)), default=0)
    return Progress(lowest, aware_utc(watermark), version)
