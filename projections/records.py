"""The event as projections see it: a plain record with its global position, from the event store
or from a Kafka message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from domain.catalogue import feature_of, is_activity, tracked_event_of
from domain.events import Fact


@dataclass(frozen=True)
class EventRecord:
    position: int
    type: str
    schema_version: int
    event_id: str
    stream_id: str
    stream_version: int
    user_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    context: dict[str, Any]
    data: dict[str, Any]

    @cached_property
    def is_activity(self) -> bool:
        return is_activity(self.type, self.data)

    @cached_property
    def feature(self) -> str | None:
        """The scene or tool this event is a use of (`scene:shopping`, `tool:check_in`), if any."""
        return feature_of(self.type, self.data)

    @cached_property
    def tracked_event(self) -> str | None:
        """The custom event this is (`event:Video Played`), if it is an EventTracked."""
        return tracked_event_of(self.type, self.data)

    @classmethod
    def from_fact(cls, fact: Fact, position: int) -> EventRecord:
        return cls(
            position=position,
            type=fact.type_name(),
            schema_version=fact.schema_version(),
            event_id=fact.event_id,
            stream_id=str(fact.originator_id),
            stream_version=fact.originator_version,
            user_id=fact.user_id,
            occurred_at=fact.occurred_at,
            recorded_at=fact.timestamp,
            context=dict(fact.context),
            data=dict(fact.data),
        )

    def to_json(self) -> bytes:
        """The wire form for Kafka: decimals as strings, times as RFC 3339."""
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form of `to_json`."""
        return {
            "position": self.position,
            "type": self.type,
            "schema_version": self.schema_version,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "user_id": self.user_id,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "context": self.context,
            "data": _tag_values(self.data),
        }

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> EventRecord:
        if isinstance(raw, dict):
            return cls.from_decoded({**raw, "data": _untag_values(raw["data"])})
        return cls.from_decoded(json.loads(raw, object_hook=untag))

    @classmethod
    def from_decoded(cls, body: dict[str, Any]) -> EventRecord:
        """From the wire form parsed with `untag` as the object hook (decimals and times restored)."""
        return cls(
            position=int(body["position"]),
            type=body["type"],
            schema_version=int(body["schema_version"]),
            event_id=body["event_id"],
            stream_id=body["stream_id"],
            stream_version=int(body["stream_version"]),
            user_id=body["user_id"],
            occurred_at=datetime.fromisoformat(body["occurred_at"]),
            recorded_at=datetime.fromisoformat(body["recorded_at"]),
            context=body["context"],
            data=body["data"],
        )


_DECIMAL = "$decimal"
_TIME = "$time"


def _tag_values(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, datetime):
        return {_TIME: value.isoformat()}
    if isinstance(value, dict):
        return {k: _tag_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_values(v) for v in value]
    return value


def untag(obj: dict[str, Any]) -> Any:
    """A `json.loads` object hook restoring the decimals and times that `to_json` tagged."""
    if len(obj) == 1:
        if _DECIMAL in obj:
            return Decimal(obj[_DECIMAL])
        if _TIME in obj:
            return datetime.fromisoformat(obj[_TIME])
    return obj


def _untag_values(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _DECIMAL in value:
            return Decimal(value[_DECIMAL])
        if len(value) == 1 and _TIME in value:
            return datetime.fromisoformat(value[_TIME])
        return {k: _untag_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag_values(v) for v in value]
    return value
