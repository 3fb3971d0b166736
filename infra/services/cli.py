"""``python -m infra.services up|down|status|env`` (and ``cohortline services ...``)."""

from __future__ import annotations

import sys

from .errors import ServiceError
from .manager import down, env_lines, status, up

USAGE = """usage: services {up,down,status,env} [postgresql|kafka|elasticsearch ...]

  up      install what is missing, start PostgreSQL, Kafka and Elasticsearch (or those named) on 127.0.0.1
  down    stop what up started (or those named; data stays)
  status  say what is installed and running
  env     print export lines for the running services: eval "$(... env)"

settings (environment): COHORTLINE_SERVICES_DIR (default ./var/services),
COHORTLINE_POSTGRES_PORT (25432), COHORTLINE_KAFKA_PORT (29092),
COHORTLINE_KAFKA_CONTROLLER_PORT (29093), COHORTLINE_ELASTICSEARCH_PORT (29200),
COHORTLINE_POSTGRES_DURABLE=1 for fsync and synchronous_commit on (benchmarks)."""


def _print(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str]) -> int:
    """Run one command; return the exit code (1 on ServiceError, 2 on bad usage)."""
    if not argv or argv[0] in ("-h", "--help", "help") or (len(argv) > 1 and argv[0] not in ("up", "down")):
        wanted_help = len(argv) == 1
        print(USAGE, file=sys.stdout if wanted_help else sys.stderr)
        return 0 if wanted_help else 2
    command, names = argv[0], argv[1:]
    try:
        if command == "up":
            up(_print, names)
        elif command == "down":
            down(_print, names)
        elif command == "status":
            for entry in status():
                _print(entry.line())
        elif command == "env":
            lines = env_lines()
            if not lines:
                print("no services running; start them with: services up", file=sys.stderr)
            for line in lines:
                _print(line)
        else:
            print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
            return 2
    except ServiceError as error:
        message = str(error) if error.tail_shown else error.details()
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
