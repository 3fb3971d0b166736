"""Per-key rate limits on the JSON routes (Flask-Limiter): every route under /v1/ counts against one
budget per API key (its SHA-256; the signed-in dashboard's key likewise), or per client address when
the request carries no key. Over it: 429 `rate_limited` with `Retry-After`. The budget is kept by
the storage COHORTLINE_RATE_LIMIT_STORAGE names: `memory://` (the default) per API process, so the
whole server allows up to its number of workers times the limit; a shared store such as `redis://`
makes it one budget."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, request, session
from flask_limiter import Limiter

from api.auth import SESSION_KEY


def init_rate_limits(app: Flask, limit: str | None, storage: str) -> Limiter | None:
    """Apply `limit` (the `limits` library's notation, e.g. `100/second;2000/minute`); None: off."""
    if limit is None:
        return None
    app.after_request(_retry_after_only_when_refused)  # runs after the limiter's own headers
    return Limiter(
        caller,
        app=app,
        application_limits=[limit],
        application_limits_exempt_when=lambda: not request.path.startswith("/v1/"),
        headers_enabled=True,
        storage_uri=storage,
        strategy="moving-window",
        key_prefix="cohortline",
    )


def _retry_after_only_when_refused(response: Response) -> Response:
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def caller() -> str:
    """Whose budget a request spends: its key's digest, never the key itself."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    key = credentials.strip() if scheme.lower() == "bearer" else None
    if key is None and request.authorization is not None and request.authorization.type == "basic":
        key = request.authorization.username  # a Segment write key
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()
    digest = session.get(SESSION_KEY)
    if isinstance(digest, str):
        return "key:" + digest
    return "address:" + (request.remote_addr or "unknown")
