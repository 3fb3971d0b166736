"""What the relay and the worker count, in Prometheus' terms (README "Metrics"), and the HTTP
endpoint each of them serves them on (`--metrics-port`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

relay_position = Gauge(
    "cohortline_relay_position",
    "The last log position the relay published to Kafka and saved",
)
relay_events = Counter(
    "cohortline_relay_events_published_total",
    "Events the relay published to Kafka (a restart may publish a few again)",
)
relay_batch_seconds = Histogram(
    "cohortline_relay_batch_seconds",
    "Time to publish one batch of the log to Kafka and have every partition acknowledge it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
relay_reconnects = Counter(
    "cohortline_relay_reconnects_total",
    "Times the relay lost PostgreSQL or Kafka and started again from its saved position",
)

consumer_lag = Gauge(
    "cohortline_kafka_consumer_lag_messages",
    "Messages of a partition assigned to this worker that its group has not committed yet "
    "(end offset minus committed offset; a message holds up to 1,000 events)",
    ["topic", "partition"],
)
consumer_committed = Gauge(
    "cohortline_kafka_consumer_committed_offset",
    "The group's committed offset of a partition assigned to this worker",
    ["topic", "partition"],
)
consumer_end = Gauge(
    "cohortline_kafka_consumer_end_offset",
    "The end offset (high watermark) of a partition assigned to this worker",
    ["topic", "partition"],
)
assigned_partitions = Gauge(
    "cohortline_kafka_assigned_partitions",
    "Partitions of the event topic assigned to this worker by its consumer group",
)
lag_measure_failures = Counter(
    "cohortline_kafka_lag_measure_failures_total",
    "Times the worker could not ask Kafka for end or committed offsets",
)


def record_lag(topic: str, ends: Mapping[int, int], committed: Mapping[int, int | None]) -> None:
    """Replace the per-partition gauges with this measurement of the worker's assignment; a
    partition its group never committed counts from offset 0."""
    for gauge in (consumer_lag, consumer_committed, consumer_end):
        gauge.clear()
    assigned_partitions.set(len(ends))
    for partition, end in ends.items():
        done = committed.get(partition) or 0
        labels = (topic, str(partition))
        consumer_end.labels(*labels).set(end)
        consumer_committed.labels(*labels).set(done)
        consumer_lag.labels(*labels).set(max(end - done, 0))


def serve_metrics(host: str, port: int) -> None:
    """Serve this process's metrics at http://host:port/metrics, from a daemon thread."""
    start_http_server(port, addr=host)
    log.info("metrics on http://%s:%s/metrics", host, port)
