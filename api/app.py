"""The Flask app factory."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from api import openapi
from api.context import ApiContext
from api.converters import TextConverter
from api.dashboard import blueprint as dashboard
from api.dashboard import init_dashboard
from api.errors import register_error_handlers
from api.freshness import NotYet
from api.metrics import init_metrics
from api.ratelimits import init_rate_limits
from api.routes import (
    activity,
    admin,
    audit,
    campaigns,
    events,
    features,
    orders,
    overview,
    retention,
    segment,
    service,
    status,
    users,
    value,
)


def create_app(context: ApiContext) -> Flask:
    app = Flask("cohortline", static_folder=None)  # the dashboard serves its own assets
    app.config["COHORTLINE"] = context
    app.url_map.converters["text"] = TextConverter
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = events.MAX_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    init_metrics(app)
    init_rate_limits(app, context.rate_limit, context.rate_limit_storage)
    init_dashboard(app, context)

    @app.errorhandler(NotYet)
    def on_not_yet(error: NotYet) -> tuple[Response, int]:
        return jsonify(error.body), 202

    @app.after_request
    def not_stored(response: Response) -> Response:
        """Answers may hold personal data or go stale: no browser or proxy keeps them."""
        if request.path.startswith("/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    for module in (
        events,
        segment,
        retention,
        activity,
        orders,
        value,
        campaigns,
        service,
        overview,
        features,
        users,
        status,
        audit,
        admin,
        openapi,
    ):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(dashboard)
    return app
