"""What a Segment-compatible request carries besides its messages: its body, gzip-encoded or not
(RudderStack's library compresses by default), and the write key."""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from flask import g, request

from api.errors import ApiError

MAX_BYTES = 5 * 1024 * 1024


def message_body() -> Any:
    """The request's JSON (gzip-encoded or not), read once per request."""
    if "segment_body" not in g:
        try:
            g.segment_body = json.loads(_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {e}") from None
    return g.segment_body


def _text() -> bytes:
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise _too_large()
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BYTES:
        raise _too_large()
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = _gunzip(raw)
    return raw


def _gunzip(raw: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        text = inflater.decompress(raw, MAX_BYTES + 1)
    except zlib.error as e:
        raise ApiError(400, "invalid_body", f"the body is not valid gzip: {e}") from None
    if len(text) > MAX_BYTES or inflater.unconsumed_tail:
        raise _too_large()
    return text


def _too_large() -> ApiError:
    return ApiError(413, "batch_too_large", f"the request body is larger than {MAX_BYTES} bytes")


def write_key() -> str | None:
    """The key as Segment's libraries send it: HTTP Basic with the key as user name (and an empty
    password), else `writeKey` in the body."""
    return _basic_user() or _body_write_key()


def _basic_user() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, _ = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


def _body_write_key() -> str | None:
    try:
        body = message_body()
    except ApiError:
        return None
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None
