"""Settings, read once from the environment (api.md "Command line and configuration")."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from api.segment.mapping import DEFAULT_MAPPING, MappingFileError, SegmentMapping, load_mapping
from projections.lifecycle import Thresholds

ROLES = frozenset({"producer", "reader", "auditor", "admin", "metrics"})
_KAFKA_HOST = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ConfigError(Exception):
    """A malformed setting; names the environment variable at fault."""

    def __init__(self, variable: str, message: str):
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    database_url: str
    kafka_servers: tuple[str, ...] = ()
    elasticsearch_url: str | None = None
    api_keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    kafka_topic: str = "cohortline.events"
    kafka_partitions: int = 4
    search_index: str = "cohortline-users"
    lifecycle: Thresholds = field(default_factory=Thresholds)
    reporting_currency: str | None = None
    """The ISO 4217 currency RFM's monetary score ranks customers in; None: the currency of most
    orders."""
    session_secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """Signs the dashboard's session cookie; random per start unless configured, so signing in
    again is needed after a restart."""
    session_cookie_secure: bool = True
    segment_mapping: SegmentMapping = DEFAULT_MAPPING
    """Where a shop's own Segment event names go: the TOML file COHORTLINE_SEGMENT_MAPPING names."""
    rate_limit: str | None = None
    """Per API key, in the `limits` notation (api.ratelimits); None: off. load_settings' default
    is DEFAULT_RATE_LIMIT."""
    rate_limit_storage: str = "memory://"

    @property
    def embedded(self) -> bool:
        """Projections run in process when no Kafka is configured."""
        return not self.kafka_servers

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        database_url=_database_url(env.get("COHORTLINE_DATABASE_URL")),
        kafka_servers=_kafka_servers(env.get("COHORTLINE_KAFKA_URL")),
        elasticsearch_url=_elasticsearch_url(env.get("COHORTLINE_ELASTICSEARCH_URL")),
        api_keys=parse_api_keys(env.get("COHORTLINE_API_KEYS")),
        kafka_topic=_name("COHORTLINE_KAFKA_TOPIC", env.get("COHORTLINE_KAFKA_TOPIC"), "cohortline.events"),
        kafka_partitions=_positive_int(
            "COHORTLINE_KAFKA_PARTITIONS", env.get("COHORTLINE_KAFKA_PARTITIONS"), 4
        ),
        search_index=_name(
            "COHORTLINE_ELASTICSEARCH_INDEX", env.get("COHORTLINE_ELASTICSEARCH_INDEX"), "cohortline-users"
        ),
        lifecycle=_lifecycle(env.get("COHORTLINE_LIFECYCLE_DAYS")),
        reporting_currency=_currency(
            "COHORTLINE_REPORTING_CURRENCY", env.get("COHORTLINE_REPORTING_CURRENCY")
        ),
        session_secret=_secret(env.get("COHORTLINE_SESSION_SECRET")),
        session_cookie_secure=_flag(
            "COHORTLINE_SESSION_COOKIE_SECURE", env.get("COHORTLINE_SESSION_COOKIE_SECURE"), True
        ),
        segment_mapping=_segment_mapping(env.get("COHORTLINE_SEGMENT_MAPPING")),
        rate_limit=_rate_limit(env.get("COHORTLINE_RATE_LIMIT")),
        rate_limit_storage=_rate_limit_storage(env.get("COHORTLINE_RATE_LIMIT_STORAGE")),
    )


DEFAULT_RATE_LIMIT = "100/second"


def _rate_limit(value: str | None) -> str | None:
    """`off`, or one or more limits like `100/second;5000/minute`."""
    from limits import parse_many

    value = (value or "").strip() or DEFAULT_RATE_LIMIT
    if value.lower() == "off":
        return None
    try:
        parse_many(value)
    except ValueError as e:
        raise ConfigError(
            "COHORTLINE_RATE_LIMIT", f"expected `off` or limits like `100/second;5000/minute` ({e})"
        ) from None
    return value


def _rate_limit_storage(value: str | None) -> str:
    from limits.storage import storage_from_string

    value = (value or "").strip() or "memory://"
    try:
        storage_from_string(value)
    except Exception as e:
        raise ConfigError(
            "COHORTLINE_RATE_LIMIT_STORAGE", f"expected a storage URI such as memory:// or redis://host ({e})"
        ) from None
    return value


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'var' / 'cohortline.db'}"


def _database_url(value: str | None) -> str:
    if not value:
        return default_database_url()
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        parts = urlsplit(value)
        if not parts.hostname or not parts.path.strip("/"):
            raise ConfigError("COHORTLINE_DATABASE_URL", "a PostgreSQL URL needs a host and a database name")
        return "postgresql+psycopg2://" + value.split("://", 1)[1]
    if scheme == "sqlite" and value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    raise ConfigError(
        "COHORTLINE_DATABASE_URL",
        f"expected postgresql://user@host:port/db or sqlite:///path, got {value!r}",
    )


def _kafka_servers(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    if not value.startswith("kafka://"):
        raise ConfigError("COHORTLINE_KAFKA_URL", f"expected kafka://host:port[,host:port], got {value!r}")
    hosts = tuple(h.strip() for h in value[len("kafka://") :].rstrip("/").split(","))
    if not hosts or not all(_KAFKA_HOST.match(h) for h in hosts):
        raise ConfigError("COHORTLINE_KAFKA_URL", f"expected kafka://host:port[,host:port], got {value!r}")
    return hosts


def _elasticsearch_url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("COHORTLINE_ELASTICSEARCH_URL", f"expected http(s)://host:port, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as e:
        raise ConfigError("COHORTLINE_ELASTICSEARCH_URL", f"malformed port in {value!r}") from e
    return value.rstrip("/")


def parse_api_keys(value: str | None) -> dict[str, frozenset[str]]:
    """`k1:producer,k2:reader+auditor` → {sha256(key): roles}; keys are kept only hashed."""
    if not value:
        return {}
    keys: dict[str, frozenset[str]] = {}
    for entry in value.split(","):
        key, sep, roles_text = entry.strip().partition(":")
        roles = frozenset(r.strip() for r in roles_text.split("+") if r.strip())
        if not key or not sep or not roles or not roles <= ROLES:
            raise ConfigError(
                "COHORTLINE_API_KEYS",
                "expected comma-separated <key>:<role>[+<role>...] with roles among "
                f"{', '.join(sorted(ROLES))}; an entry is malformed",
            )
        keys[hash_key(key)] = roles
    return keys


def _name(variable: str, value: str | None, default: str) -> str:
    if value is None:
        return default
    if not _NAME.match(value):
        raise ConfigError(variable, f"expected lower-case letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _currency(variable: str, value: str | None) -> str | None:
    if not value:
        return None
    if not _CURRENCY.match(value):
        raise ConfigError(variable, f"expected an ISO 4217 code such as EUR, got {value!r}")
    return value


def _lifecycle(value: str | None) -> Thresholds:
    if value is None:
        return Thresholds()
    parts = value.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(
            "COHORTLINE_LIFECYCLE_DAYS", f"expected new,active,churn days such as 7,30,90, got {value!r}"
        )
    new, active, churn = (int(p) for p in parts)
    if not 0 < new <= active < churn:
        raise ConfigError(
            "COHORTLINE_LIFECYCLE_DAYS",
            f"expected 0 < new <= active < churn days (a new user is also active), got {value!r}",
        )
    return Thresholds(new, active, churn)


def _positive_int(variable: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(variable, f"expected a positive integer, got {value!r}")
    return int(value)


SECRET_MIN_CHARS = 32


def _segment_mapping(value: str | None) -> SegmentMapping:
    if not value:
        return DEFAULT_MAPPING
    try:
        return load_mapping(Path(value))
    except MappingFileError as e:
        raise ConfigError("COHORTLINE_SEGMENT_MAPPING", str(e)) from None


def _secret(value: str | None) -> str:
    if value is None or value == "":
        return secrets.token_hex(32)
    if len(value) < SECRET_MIN_CHARS:
        raise ConfigError(
            "COHORTLINE_SESSION_SECRET", f"needs at least {SECRET_MIN_CHARS} characters, got {len(value)}"
        )
    return value


def _flag(variable: str, value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ConfigError(variable, f"expected true or false, got {value!r}")
