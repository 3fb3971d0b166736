"""What the benchmarks that run on the real services need from the environment."""

from __future__ import annotations

import os
from collections.abc import Sequence

FULL_STACK = ("COHORTLINE_DATABASE_URL", "COHORTLINE_KAFKA_URL", "COHORTLINE_ELASTICSEARCH_URL")


def require_env(variables: Sequence[str] = FULL_STACK) -> None:
    """Exit saying how to start the services when one of `variables` is not set."""
    for variable in variables:
        if not os.environ.get(variable):
            raise SystemExit(
                f'{variable} is not set: run `cohortline services up` and `eval "$(cohortline services env)"`'
            )
