"""`GET /metrics` (role `metrics`): the API's own counters, what the read models' tables say at
scrape time, and, under `cohortline serve`, every API worker's and the embedded projections
process's counters summed (prometheus_client's multiprocess mode, README "Metrics")."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.auth import require
from api.context import ApiContext
from api.routes.status import current_status

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404 or 405 from routing)."""

http_requests = Counter(
    "cohortline_http_requests_total",
    "HTTP requests answered, by route template (never the values in its path), method and status",
    ["route", "method", "status"],
)
http_seconds = Histogram(
    "cohortline_http_request_duration_seconds",
    "Time from a request's arrival in the API worker to its answer, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
events_appended = Counter(
    "cohortline_events_appended_total",
    "Events appended to the log, by the door they came in (events: POST /v1/events; segment: the "
    "Segment-compatible routes)",
    ["source"],
)
events_duplicates = Counter(
    "cohortline_events_duplicates_total",
    "Events sent again (a retry) and acknowledged without being appended a second time",
    ["source"],
)


def count_appended(source: str, appended: int, duplicates: int) -> None:
    events_appended.labels(source).inc(appended)
    events_duplicates.labels(source).inc(duplicates)


def init_metrics(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(blueprint)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    http_requests.labels(route, request.method, str(response.status_code)).inc()
    if started is not None:
        http_seconds.labels(route, request.method).observe(time.perf_counter() - started)
    return response


@blueprint.get("/metrics")
@require("metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(ReadModelsCollector(current_app.config["COHORTLINE"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _ThisProcess(Collector):
    """The default registry of a process that serves alone (no gunicorn)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class ReadModelsCollector(Collector):
    """Gauges read from the event store and the read models' tables at scrape time, so every API
    worker answers the same: the log's head, each projection's position, lag, halts and dead
    letters, and rebuild progress."""

    def __init__(self, context: ApiContext):
        self.context = context

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "cohortline_read_models_up", "1 when the event store and the read models answered this scrape"
        )
        try:
            families = list(self._families())
        except Exception:
            log.warning("metrics: the event store or the read models did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        status = current_status(self.context)
        head = GaugeMetricFamily("cohortline_log_head_position", "The log's last position")
        head.add_metric([], status.head)
        yield head
        gauges = {
            "position": ("cohortline_projection_position", "Every event at or below it is applied"),
            "lag_events": ("cohortline_projection_lag_events", "Events recorded but not yet applied"),
            "lag_seconds": (
                "cohortline_projection_lag_seconds",
                "How long ago the oldest event not yet applied was recorded (0 when caught up)",
            ),
        }
        families = {
            key: GaugeMetricFamily(name, text, labels=["projection"]) for key, (name, text) in gauges.items()
        }
        halted = GaugeMetricFamily(
            "cohortline_projection_halted",
            "1 when a bug stopped the projection until its process restarts",
            labels=["projection"],
        )
        letters = GaugeMetricFamily(
            "cohortline_dead_letters",
            "Events and messages the projection parked to move on",
            labels=["projection", "kind"],
        )
        for projection in status.projections:
            for key, family in families.items():
                family.add_metric([projection.name], getattr(projection, key))
            halted.add_metric([projection.name], int(projection.state == "stopped"))
            for kind, count in projection.dead_letters.by_kind.model_dump().items():
                letters.add_metric([projection.name, kind], count)
        yield from families.values()
        yield halted
        yield letters
        yield from self._rebuilds()

    def _rebuilds(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "cohortline_rebuild_running",
            "1 while a blue/green rebuild of the projection runs",
            labels=["projection"],
        )
        position = GaugeMetricFamily(
            "cohortline_rebuild_position", "How far the last rebuild replayed the log", labels=["projection"]
        )
        target = GaugeMetricFamily(
            "cohortline_rebuild_target", "The log position the last rebuild replays to", labels=["projection"]
        )
        for name in self.context.projections:
            rebuild = self.context.read_models.status(name)
            if rebuild is None:
                continue
            running.add_metric([name], int(rebuild["state"] == "running"))
            position.add_metric([name], rebuild["position"])
            target.add_metric([name], rebuild["target"])
        yield from (running, position, target)
