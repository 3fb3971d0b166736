"""The user search's page cursor, the same for SQL and Elasticsearch: the sort key of the last user
of a page, as unpadded URL-safe base64 of the JSON
`{"v": 1, "sort": "-last_active_at,user_id", "key": [<last_active_at in epoch ms or null>, "<user_id>"]}`.

Decoding is strict: anything but a cursor this module could have written, down to the base64
padding bits, is an InvalidCursor. A client can change a cursor only into another valid sort key,
which pages from there within the answers it may see anyway."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from projections.rules import millis

VERSION = 1
SORT = "-last_active_at,user_id"
"""Newest activity first (users never active last), then user id by code point."""

MAX_LENGTH = 2048
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_MS_RANGE = (-62135596800000, 253402300799999)
"""Epoch milliseconds of 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z."""


class InvalidCursor(ValueError):
    """A cursor that this module did not write; the message says what is wrong with it."""


@dataclass(frozen=True)
class SortKey:
    last_active_ms: int | None
    """last_active_at in milliseconds since the epoch (rounded down), None for a user never active."""
    user_id: str


def encode_cursor(key: SortKey) -> str:
    payload = {"v": VERSION, "sort": SORT, "key": [key.last_active_ms, key.user_id]}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key in `cursor`; InvalidCursor when it is not a cursor of this sort and version."""
    payload = _payload(cursor)
    if not isinstance(payload, dict) or set(payload) != {"v", "sort", "key"}:
        raise InvalidCursor("not a cursor")
    if not _is_int(payload["v"]) or payload["v"] != VERSION:
        raise InvalidCursor("unsupported cursor version")
    if payload["sort"] != SORT:
        raise InvalidCursor("a cursor of another sort")
    return _sort_key(payload["key"])


def _payload(cursor: str) -> Any:
    if len(cursor) > MAX_LENGTH or not _BASE64URL.fullmatch(cursor):
        raise InvalidCursor("not URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("not URL-safe base64") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
        raise InvalidCursor("not URL-safe base64")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        raise InvalidCursor("not JSON") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _sort_key(key: Any) -> SortKey:
    if not isinstance(key, list) or len(key) != 2:
        raise InvalidCursor("the key must be [last_active_ms, user_id]")
    ms, user_id = key
    if ms is not None and not (_is_int(ms) and _MS_RANGE[0] <= ms <= _MS_RANGE[1]):
        raise InvalidCursor("last_active_ms must be null or epoch milliseconds in years 1 to 9999")
    if not _is_user_id(user_id):
        raise InvalidCursor("user_id must be a string of 1 to 128 characters")
    return SortKey(ms, user_id)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_user_id(value: Any) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return False
    return True


def key_of(last_active_at: Any, user_id: str) -> SortKey:
    """The sort key of a stored user (last_active_at a datetime or None)."""
    return SortKey(None if last_active_at is None else millis(last_active_at), user_id)
