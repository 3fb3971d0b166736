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
    yield create_app(system.api_context(open_mode=True))
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
        if rule.endpoint == "static" or rule.endpoint.startswith("dashboard."):
            continue  # the dashboard's pages are HTML for people, not the JSON API
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


def test_every_declared_route_documents_exactly_the_parameters_its_query_takes(app):
    from api.declared import OPERATIONS

    paths = app.test_client().get("/v1/openapi.json").json["paths"]
    assert len(OPERATIONS) >= 18
    for operation in OPERATIONS:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", operation.path)
        documented = paths[path][operation.method.lower()]
        in_query = {p["name"] for p in documented["parameters"] if p["in"] == "query"}
        takes = (
            {f.alias or name for name, f in operation.query.model_fields.items()}
            if operation.query
            else set()
        )
        assert in_query == takes, path
        in_path = {p["name"] for p in documented["parameters"] if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), path
        assert str(operation.status) in documented["responses"]


def test_a_query_parameter_the_document_does_not_list_is_refused(app):
    client = app.test_client()
    for path in ("/v1/status", "/v1/audit/verify", "/v1/admin/projections/verify"):
        response = client.get(path, query_string={"colour": "red"})
        assert response.status_code == 400, path
        assert response.json["error"]["details"] == [{"field": "colour", "message": "unknown parameter"}]
