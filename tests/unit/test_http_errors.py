"""HTTP-level errors keep the headers HTTP requires: a 405 names the allowed methods (RFC 9110)."""

from __future__ import annotations

import re

from api.app import create_app
from infra.bootstrap import build_system
from infra.config import load_settings

UNUSED_METHODS = ("PUT", "PATCH", "DELETE")


def test_every_route_answers_an_undeclared_method_with_405_and_allow(tmp_path):
    settings = load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    system = build_system(settings)
    try:
        app = create_app(system.api_context(open_mode=True))
        client = app.test_client()
        rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
        assert rules
        methods_of: dict[str, set[str]] = {}
        for rule in rules:  # a path may have one rule per method (the dashboard's sign-in)
            methods_of.setdefault(rule.rule, set()).update(rule.methods)
        for rule in rules:
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"x", rule.rule)
            for method in UNUSED_METHODS:
                response = client.open(path, method=method)
                assert response.status_code == 405, (rule.rule, method)
                assert response.json["error"]["code"] == "method_not_allowed"
                allowed = {m.strip() for m in response.headers["Allow"].split(",")}
                assert allowed == methods_of[rule.rule], (rule.rule, allowed)
    finally:
        system.close()


def test_a_path_key_with_a_slash_or_a_line_break_reaches_its_route(tmp_path):
    """User ids and tool names may hold both; the answer is the route's own, not a routing 404."""
    settings = load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    system = build_system(settings)
    try:
        client = create_app(system.api_context(open_mode=True)).test_client()
        for key in ("a%0Ab", "a/b", "a%2Fb"):
            for view in ("events", "state"):
                answer = client.get(f"/v1/audit/streams/user/{key}/{view}")
                assert answer.json["error"]["code"] == "stream_not_found", (key, view)
            impact = client.get(f"/v1/features/tool%3A{key}/impact?from=2011-01-01&to=2011-01-31")
            assert impact.json["error"]["code"] == "unknown_feature", key
    finally:
        system.close()
