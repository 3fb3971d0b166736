"""What the API needs from the rest of the system; infra builds it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Engine

from api.segment.mapping import DEFAULT_MAPPING, SegmentMapping
from domain.application import Cohortline
from domain.audit import AuditedEvent
from projections.lifecycle import Thresholds
from projections.rfm import CutsCache
from projections.search import UserPage, UserQuery


class UserSearch(Protocol):
    def search(self, query: UserQuery) -> UserPage: ...


class Verdict(Protocol):
    ok: bool
    events: int
    head_hash: str
    broken_at: int | None
    reason: str | None


class AuditTrail(Protocol):
    def head(self) -> int: ...
    def stream(self, stream_id: UUID) -> list[AuditedEvent]: ...
    def log(self, after: int, limit: int) -> list[AuditedEvent]: ...
    def follow(self, after: int = 0) -> Iterator[AuditedEvent]: ...
    def verify(self) -> Verdict: ...


class UserErasure(Protocol):
    def erase(self, user_id: str) -> dict[str, Any]:
        """Record the erasure and destroy the user's key; raises domain.errors.UnknownUser."""


class ReadModelAdmin(Protocol):
    """Rebuilds and verification of read models (infra.rebuilds); raises projections.admin errors."""

    def start(self, name: str) -> dict[str, Any]: ...
    def status(self, name: str) -> dict[str, Any] | None: ...
    def verify(self) -> dict[str, Any]: ...


@dataclass
class ApiContext:
    event_store: Cohortline
    read_engine: Engine
    search: UserSearch
    projections: tuple[str, ...]
    kafka_partitions: int | None
    """Partitions of the event topic the projections read; None when they run in process."""
    audit: AuditTrail
    read_models: ReadModelAdmin
    erasure: UserErasure
    api_keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    open_mode: bool = False
    backends: Mapping[str, str] = field(default_factory=dict)
    lifecycle: Thresholds = field(default_factory=Thresholds)
    rfm_cuts: CutsCache = field(default_factory=CutsCache)
    session_secret: str = ""
    """Signs the dashboard's session cookie (api.dashboard); empty: a random one per app."""
    session_cookie_secure: bool = True
    segment_mapping: SegmentMapping = DEFAULT_MAPPING
    """Where a shop's own event names go (api.segment.mapping)."""
    rate_limit: str | None = None
    """Per API key (api.ratelimits); None: off."""
    rate_limit_storage: str = "memory://"
