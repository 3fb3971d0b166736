"""What the projection runners count, in Prometheus' terms (README "Metrics"). The processes that
run projections expose them: `cohortline worker` on its metrics port, and on the embedded default
the API's `/metrics` (the projections process writes them to the API's multiprocess directory)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

batch_seconds = Histogram(
    "cohortline_projection_batch_seconds",
    "Time to apply one batch of deliveries to a projection (read model, search documents and "
    "positions in one transaction), failed batches included",
    ["projection"],
    buckets=BATCH_BUCKETS,
)
events_applied = Counter(
    "cohortline_projection_events_applied_total",
    "Events a projection applied for the first time (redeliveries it skipped are not counted)",
    ["projection"],
)
transient_failures = Counter(
    "cohortline_projection_backend_unavailable_total",
    "Batches that failed because PostgreSQL or Elasticsearch was unavailable and are retried",
    ["projection"],
)
