"""The document tells the truth: schemathesis generates requests from GET /v1/openapi.json, valid
and invalid, and sends each with every role's key to a real `cohortline serve` on the embedded
default. No answer is a server error, every answer conforms to its declared status, headers and
schema, the document's invalid requests are refused, and its valid requests are accepted unless
they break a rule that the operation lists because JSON Schema cannot state it (`x-rules`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.processes import serve

ROLES = ("producer", "reader", "auditor", "admin")
KEYS = {role: f"fuzz-{role}" for role in ROLES}
EXAMPLES = 20
REQUEST_TIMEOUT_S = 60
"""A request may ask the API to wait up to 10 s for the read models (`wait_ms`); a busy machine adds to it."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_DATABASE_URL"] = f"sqlite:///{workdir / 'fuzz.db'}"
    env["COHORTLINE_API_KEYS"] = ",".join(f"{key}:{role}" for role, key in KEYS.items())
    env["COHORTLINE_RATE_LIMIT"] = "off"  # the fuzzer sends as fast as it can
    command, base = serve(env, workdir, "--workers", "2")
    try:
        yield base
    finally:
        command.stop()


@pytest.fixture(scope="module")
def api_schema(served: str) -> schemathesis.BaseSchema:
    document = requests.get(f"{served}/v1/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


@schemathesis.check
def valid_requests_break_only_listed_rules(ctx, response, case) -> bool | None:
    """Instead of `positive_data_acceptance`: a request the document allows may still be refused
    (400 for a parameter, 422 for the body) for a rule JSON Schema cannot state, when the operation
    lists that rule."""
    refused = response.status_code in (400, 422)
    if case.meta is None or not case.meta.generation.mode.is_positive or not refused:
        return positive_data_acceptance(ctx, response, case)
    listed = case.operation.definition.raw.get("x-rules", {})
    details = response.json()["error"]["details"]
    unlisted = [d for d in details if re.sub(r"\[\d+\]", "", d.get("field", "")) not in listed]
    if unlisted or not details:
        raise AssertionError(f"a valid request was refused for what the document does not say: {details}")
    return None


@schemathesis.check
def invalid_requests_are_refused(ctx, response, case) -> bool | None:
    """`negative_data_rejection`, counting the HTTP server's 414 for an over-long request line as the
    refusal it is."""
    if response.status_code == 414:
        return None
    return negative_data_rejection(ctx, response, case)


def _with_key(case, key: str) -> dict[str, str] | None:
    """The role's key, unless the case is about a malformed Authorization header itself."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return None
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_answer_conforms_to_the_document(api_schema, served, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 19
    sent = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def answers_conform(case) -> None:
            nonlocal sent
            for key in KEYS.values():
                case.call_and_validate(
                    base_url=served,
                    headers=_with_key(case, key),
                    timeout=REQUEST_TIMEOUT_S,
                    excluded_checks=[positive_data_acceptance, negative_data_rejection],
                    additional_checks=[valid_requests_break_only_listed_rules, invalid_requests_are_refused],
                )
                sent += 1

        try:
            answers_conform()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # nothing in it can be made invalid
    print(f"{mode}: {sent} requests over {len(operations)} operations")
