"""The error envelope: {"error": {"code", "message", "details"}} with a stable code."""

from __future__ import annotations

from typing import Any

from elastic_transport import TransportError as ElasticsearchUnreachable
from elasticsearch import ApiError as ElasticsearchError
from flask import Flask, Response, jsonify
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from projections.failures import TransientError, database_unavailable

UNAVAILABLE_RETRY_AFTER_S = 5
"""What an answer 503 tells the client to wait before trying again."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or []}})
    response.status_code = status
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "batch_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def on_api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = "the request body is larger than 5 MB"
        elif status == 429:
            message = f"this key made too many requests (limit {message}); retry after Retry-After seconds"
        response = error_response(status, _HTTP_CODES.get(status, "http_error"), message)
        for name, value in error.get_headers():  # e.g. a 405's Allow (RFC 9110)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        if backend_unavailable(error):
            app.logger.warning("a backend is unavailable: %s", type(error).__name__)
            response = error_response(
                503, "unavailable", "a database or search backend is unavailable; try again shortly"
            )
            response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
            return response
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed to handle the request")


def backend_unavailable(error: BaseException) -> bool:
    """PostgreSQL or SQLite unreachable or locked, or Elasticsearch unreachable or overloaded: the
    operator's matter, not a bug, and the client's retry will do."""
    if database_unavailable(error):
        return True
    if isinstance(error, ElasticsearchError):
        return error.meta.status in (429, 502, 503, 504)
    return isinstance(error, (PoolTimeout, ElasticsearchUnreachable, TransientError))
