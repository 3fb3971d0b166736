"""Bearer keys and roles (api.md "Keys and roles"); keys are compared by their SHA-256.

The dashboard signs in with the same keys: the key's SHA-256 is held in Flask's signed session
cookie, and it stands in for the header on the requests that change nothing (GET and HEAD), so a
page's scripts read the JSON routes as the signed-in key while no other site can make a browser
write with it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request, session

from api.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


KeySource = Callable[[], str | None]
"""Where else a route finds the key when the request has no Bearer header (api.segment's write
key); None when it is not there either."""


def require(role: str, *, also: KeySource | None = None) -> Callable[[F], F]:
    """Allow keys holding `role` (or `admin`, which holds them all); open mode allows everyone."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            context = current_app.config["COHORTLINE"]
            if not context.open_mode:
                roles = _roles_of_request(context.api_keys, also)
                if role not in roles and "admin" not in roles:
                    raise ApiError(403, "forbidden", f"this key lacks the {role!r} role")
            return view(*args, **kwargs)

        guarded.required_role = role  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


SESSION_KEY = "key_sha256"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def _roles_of_request(keys: dict[str, frozenset[str]], also: KeySource | None) -> frozenset[str]:
    header = request.headers.get("Authorization", "")
    if not header and request.method in SAFE_METHODS:
        signed_in = session_roles(keys)
        if signed_in is not None:
            return signed_in
    scheme, _, key = header.partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else (also() if also else None) or ""
    if not key:
        also_said = " or as a Segment write key (HTTP Basic user name, or writeKey)" if also else ""
        raise ApiError(401, "unauthorized", f"send an API key as 'Authorization: Bearer <key>'{also_said}")
    roles = roles_of_key(keys, key)
    if roles is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    return roles


def roles_of_key(keys: Mapping[str, frozenset[str]], key: str) -> frozenset[str] | None:
    return _roles_of_digest(keys, hashlib.sha256(key.encode()).hexdigest())


def session_roles(keys: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The roles of the key the session signed in with; None when signed out or the key is no
    longer configured."""
    digest = session.get(SESSION_KEY)
    return _roles_of_digest(keys, digest) if isinstance(digest, str) else None


def sign_in(keys: Mapping[str, frozenset[str]], key: str) -> frozenset[str] | None:
    """Hold the key in the session when it is known; its roles, or None."""
    roles = roles_of_key(keys, key)
    if roles is not None:
        session.clear()
        session[SESSION_KEY] = hashlib.sha256(key.encode()).hexdigest()
    return roles


def _roles_of_digest(keys: Mapping[str, frozenset[str]], digest: str) -> frozenset[str] | None:
    """Compared with every known digest in constant time, without stopping at a match, so the time
    taken tells nothing of which key matched or how much of it."""
    found = None
    for known, roles in keys.items():
        if hmac.compare_digest(known, digest):
            found = roles
    return found
