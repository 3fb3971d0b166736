"""Query-string parameters, each rejected with 400 `invalid_parameter` naming it."""

from __future__ import annotations

from datetime import datetime

from flask import request

from api.errors import ApiError
from domain.envelope import parse_timestamp


def invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name}: {message}", [{"field": name, "message": message}])


def int_param(name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    if minimum is not None and value < minimum:
        raise invalid(name, f"must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(name, f"must be <= {maximum}")
    return value


def str_param(name: str, *, max_length: int = 128) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length:
        raise invalid(name, f"must be at most {max_length} characters")
    return raw


def time_param(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    parsed = parse_timestamp(raw)
    if parsed is None:
        raise invalid(name, "must be an RFC 3339 timestamp with offset")
    return parsed


def reject_unknown(allowed: set[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise invalid(unknown[0], "unknown parameter")
