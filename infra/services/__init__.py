"""Local PostgreSQL, Kafka and Elasticsearch for development, tests and benchmarks.

``python -m infra.services up|down|status|env`` (``cohortline services ...``) installs what is
missing, starts, stops and reports the three services, on 127.0.0.1 only:

- PostgreSQL 15 (Debian's ``postgresql`` package, apt-installed when missing), a cluster in
  ``<dir>/postgresql/data`` run as the ``postgres`` user, database ``cohortline``, trust auth,
  max_connections=200. fsync and synchronous_commit are off unless
  ``COHORTLINE_POSTGRES_DURABLE=1`` (benchmarks set it, for durable settings).
- Kafka 3.9 (KRaft, one broker+controller node) from Maven Central jars in ``<dir>/kafka/libs``.
- Elasticsearch 8.19 (integ-test-zip from Maven Central) run as the system user
  ``cohortline-es`` (created when missing; Elasticsearch refuses to run as root).

Everything (downloads, unpacked trees, data, logs, pid files) lives under
``COHORTLINE_SERVICES_DIR`` (default ``./var/services``). Ports: ``COHORTLINE_POSTGRES_PORT``
(25432), ``COHORTLINE_KAFKA_PORT`` (29092), ``COHORTLINE_KAFKA_CONTROLLER_PORT`` (29093),
``COHORTLINE_ELASTICSEARCH_PORT`` (29200). ``down`` keeps data and installs.
"""

from .cli import main
from .errors import ServiceError, SettingsError
from .manager import ServiceStatus, down, env_lines, status, up
from .settings import Settings, load_settings

__all__ = [
    "ServiceError",
    "ServiceStatus",
    "Settings",
    "SettingsError",
    "down",
    "env_lines",
    "load_settings",
    "main",
    "status",
    "up",
]
