"""Settings of the local services, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

SERVICES_DIR_VAR = "COHORTLINE_SERVICES_DIR"
POSTGRES_PORT_VAR = "COHORTLINE_POSTGRES_PORT"
KAFKA_PORT_VAR = "COHORTLINE_KAFKA_PORT"
KAFKA_CONTROLLER_PORT_VAR = "COHORTLINE_KAFKA_CONTROLLER_PORT"
ELASTICSEARCH_PORT_VAR = "COHORTLINE_ELASTICSEARCH_PORT"
# Benchmarks set COHORTLINE_POSTGRES_DURABLE=1 to run PostgreSQL with fsync and
# synchronous_commit on; otherwise both are off (fast, fine for tests and development).
POSTGRES_DURABLE_VAR = "COHORTLINE_POSTGRES_DURABLE"

# Away from the well-known ports so that a system PostgreSQL on 5432 (or a Kafka on 9092, an
# Elasticsearch on 9200) never collides with ours, and below Linux's ephemeral range (32768-60999):
# a client reconnecting to a stopped service on a port inside it can be given that very port as its
# own and connect to itself, which keeps the service from binding it again when it restarts.
DEFAULT_POSTGRES_PORT = 25432
DEFAULT_KAFKA_PORT = 29092
DEFAULT_KAFKA_CONTROLLER_PORT = 29093
DEFAULT_ELASTICSEARCH_PORT = 29200

HOST = "127.0.0.1"
JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")


@dataclass(frozen=True)
class Settings:
    services_dir: Path
    postgres_port: int = DEFAULT_POSTGRES_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    kafka_controller_port: int = DEFAULT_KAFKA_CONTROLLER_PORT
    elasticsearch_port: int = DEFAULT_ELASTICSEARCH_PORT
    postgres_durable: bool = False
    host: str = HOST
    java_home: Path = JAVA_HOME


def _port(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(variable, f"expected a port number 1-65535, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise SettingsError(variable, f"expected a port number 1-65535, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], variable: str) -> bool:
    raw = env.get(variable, "").strip()
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    raise SettingsError(variable, f"expected 1 or 0, got {raw!r}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: ``os.environ``); SettingsError if a value is malformed."""
    env = os.environ if env is None else env
    raw_dir = env.get(SERVICES_DIR_VAR, "").strip()
    services_dir = Path(os.path.abspath(os.path.expanduser(raw_dir or "var/services")))
    ports = {
        POSTGRES_PORT_VAR: _port(env, POSTGRES_PORT_VAR, DEFAULT_POSTGRES_PORT),
        KAFKA_PORT_VAR: _port(env, KAFKA_PORT_VAR, DEFAULT_KAFKA_PORT),
        KAFKA_CONTROLLER_PORT_VAR: _port(
            env,
            KAFKA_CONTROLLER_PORT_VAR,
            DEFAULT_KAFKA_CONTROLLER_PORT,
        ),
        ELASTICSEARCH_PORT_VAR: _port(env, ELASTICSEARCH_PORT_VAR, DEFAULT_ELASTICSEARCH_PORT),
    }
    seen: dict[int, str] = {}
    for variable, value in ports.items():
        if value in seen:
            raise SettingsError(variable, f"port {value} is already used by {seen[value]}")
        seen[value] = variable
    return Settings(
        services_dir=services_dir,
        postgres_port=ports[POSTGRES_PORT_VAR],
        kafka_port=ports[KAFKA_PORT_VAR],
        kafka_controller_port=ports[KAFKA_CONTROLLER_PORT_VAR],
        elasticsearch_port=ports[ELASTICSEARCH_PORT_VAR],
        postgres_durable=_flag(env, POSTGRES_DURABLE_VAR),
    )
