"""Every table Cohortline keeps, as SQLAlchemy metadata: what the migrations must produce, and what
`alembic revision --autogenerate` compares a database with."""

from __future__ import annotations

from sqlalchemy import MetaData

from infra.eventstore import event_store_metadata
from infra.personal_data import key_metadata
from infra.rebuilds import rebuild_metadata
from projections import analytics, runner  # noqa: F401 - their modules declare the read-model tables
from projections.schema import metadata as read_model_metadata
from streams.relay import relay_metadata

ALL_METADATA: tuple[MetaData, ...] = (
    event_store_metadata,
    read_model_metadata,
    relay_metadata,
    key_metadata,
    rebuild_metadata,
)
