"""The shape of a Segment message (HTTP Tracking API: track, identify, page, screen), and what of it
every catalogue envelope takes: the user, the event time corrected for the sender's clock, and the
context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from domain.envelope import parse_timestamp

KINDS = ("track", "identify", "page", "screen")
Kind = Literal["track", "identify", "page", "screen"]
Id = StrictStr | StrictInt
"""Segment's libraries send ids as strings or numbers."""


class Message(BaseModel):
    """One message; what Cohortline does not read (integrations, options, library metadata) is let
    through unread, as Segment does."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Kind
    userId: Id | None = None  # noqa: N815 (Segment's names)
    anonymousId: Id | None = None  # noqa: N815
    messageId: Id | None = None  # noqa: N815
    timestamp: StrictStr | None = None
    originalTimestamp: StrictStr | None = None  # noqa: N815
    sentAt: StrictStr | None = None  # noqa: N815
    receivedAt: StrictStr | None = None  # noqa: N815
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    event: StrictStr | None = None
    name: StrictStr | None = None
    category: StrictStr | None = None


class MessageError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def user_of(message: Message) -> str:
    """`userId`, else `anonymousId`, as text."""
    for value in (message.userId, message.anonymousId):
        if value is not None and str(value) != "":
            return str(value)
    raise MessageError("userId", "userId or anonymousId is required")


def event_time(message: Message, batch_sent_at: str | None, received_at: datetime | None) -> datetime:
    """When it happened: `timestamp` (else `originalTimestamp`), moved by the sender's clock error
    `sentAt - receivedAt` when both are known; without a timestamp, when it was received.

    `received_at` is the server's clock for a request; None for a file, whose messages carry their
    own `receivedAt` when they carry one."""
    field = "timestamp" if message.timestamp is not None else "originalTimestamp"
    happened = _instant(message, field)
    if received_at is None and message.receivedAt is not None:
        received_at = _instant(message, "receivedAt")
    if happened is None:
        if received_at is None:
            raise MessageError("timestamp", "required when the message has no receivedAt")
        return received_at
    sent_text = message.sentAt if message.sentAt is not None else batch_sent_at
    sent_at = _parsed("sentAt", sent_text) if sent_text is not None else None
    if sent_at is None or received_at is None:
        return happened
    try:
        return received_at - (sent_at - happened)
    except OverflowError:
        raise MessageError("sentAt", "is too far from timestamp for a clock's error") from None


def _instant(message: Message, field: str) -> datetime | None:
    text = getattr(message, field)
    return None if text is None else _parsed(field, text)


def _parsed(field: str, text: str) -> datetime:
    parsed = parse_timestamp(text)
    if parsed is None:
        raise MessageError(field, "must be an ISO 8601 timestamp with an offset, e.g. 2011-01-04T10:00:00Z")
    return parsed


CHANNELS = {"browser": "web", "mobile": "app"}
"""Segment's `context.channel` in the catalogue's words; other channels (`server`, …) as they are."""
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LOCALE_REGION = re.compile(r"^[A-Za-z]{2,3}[-_]([A-Za-z]{2})\b")


def catalogue_context(context: Mapping[str, Any]) -> dict[str, str]:
    """The catalogue's context from Segment's: channel, platform (the OS), country (a two-letter
    `location.country`, else the locale's region), campaign (its UTM name) and session. A value that
    does not fit the catalogue's context is left out: context is how events are broken down, not a
    fact to refuse a batch for."""
    found = {
        "channel": _text(context.get("channel"), 64),
        "platform": _text(_nested(context, "os", "name"), 64),
        "country": _country(context),
        "campaign_id": _text(_nested(context, "campaign", "name"), 128),
        "session_id": _text(context.get("sessionId", context.get("session_id")), 128),
    }
    if found["channel"] is not None:
        found["channel"] = CHANNELS.get(found["channel"], found["channel"])
    return {name: value for name, value in found.items() if value is not None}


def _nested(context: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = context.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None


def _text(value: Any, longest: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if 0 < len(text) <= longest and "\x00" not in text else None


def _country(context: Mapping[str, Any]) -> str | None:
    country = _nested(context, "location", "country")
    if isinstance(country, str) and _COUNTRY.match(country):
        return country.upper()
    locale = context.get("locale")
    match = _LOCALE_REGION.match(locale) if isinstance(locale, str) else None
    return match.group(1).upper() if match else None
