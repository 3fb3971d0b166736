"""Bearer keys and roles (api.md "Keys and roles"); keys are compared by their SHA-256."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request

from api.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def require(role: str) -> Callable[[F], F]:
    """Allow keys holding `role` (or `admin`, which holds them all); open mode allows everyone."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            context = current_app.config["COHORTLINE"]
            if not context.open_mode:
                roles = _roles_of_request(context.api_keys)
                if role not in roles and "admin" not in roles:
                    raise ApiError(403, "forbidden", f"this key lacks the {role!r} role")
            return view(*args, **kwargs)

        guarded.required_role = role  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def _roles_of_request(keys: dict[str, frozenset[str]]) -> frozenset[str]:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'")
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    for known, roles in keys.items():
        if hmac.compare_digest(known, digest):
            return roles
    raise ApiError(401, "unauthorized", "unknown API key")
