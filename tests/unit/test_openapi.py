"""GET /v1/openapi.json is a valid OpenAPI 3.1 document that describes every registered route."""

import re

import pytest
from openapi_spec_validator import validate

from api.app import create_app
from domain.catalogue import TYPES
from infra.bootstrap import build_system
from infra.config import load_settings


@pytest.fixture
def app(tmp_path):
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}))
    yield create_app(system.api_context())
    system.close()


def test_the_document_is_valid_openapi_3_1(app):
    response = app.test_client().get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_and_method_is_described(app):
    paths = app.test_client().get("/v1/openapi.json").json["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in paths, path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], (path, method)


def test_every_sender_type_has_a_schema(app):
    schemas = app.test_client().get("/v1/openapi.json").json["components"]["schemas"]
    senders = {name for name, spec in TYPES.items() if spec.accepted_from_senders}
    assert senders <= set(schemas)
    assert "PersonalDataErased" not in schemas
    assert schemas["OrderPlaced"]["properties"]["data"]["required"] == ["order_id", "amount", "currency"]
