"""Every door of the app checked: each rule of the URL map, with each of its methods, either holds a
role (api.auth.require sets the view's `required_role`) and refuses a request without a key (401),
with an unknown key (401) and with the key of every role that lacks it (403), or is listed in PUBLIC
with the reason it needs no key. A route added without `require` and without a PUBLIC entry fails
here. The Segment routes' other doors (the key as HTTP Basic user name or as `writeKey`) and the
dashboard's signed-in session are checked alike. One storage suffices: nothing here is about it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from api.app import create_app
from api.auth import require
from api.declared import OPERATIONS
from infra.bootstrap import build_system
from infra.config import ROLES, load_settings

KEYS = {role: f"door-{role}-key" for role in sorted(ROLES)}
UNKNOWN_KEY = "door-unknown-key"

SIGN_IN = "/sign-in"
PAGE = "a dashboard page: redirects to sign-in without a signed-in session"
PUBLIC: dict[tuple[str, str], tuple[int, str]] = {
    # (method, rule): (the answer to a request without a key, why the route needs none)
    ("GET", "/"): (302, f"{PAGE}; its data comes from the guarded JSON routes"),
    ("GET", "/retention"): (302, PAGE),
    ("GET", "/activity"): (302, PAGE),
    ("GET", "/scenes-and-tools"): (302, PAGE),
    ("GET", "/operations"): (302, PAGE),
    ("GET", "/service"): (302, PAGE),
    ("GET", "/value"): (302, PAGE),
    ("GET", "/users"): (302, PAGE),
    ("GET", "/status"): (302, PAGE),
    ("GET", "/audit"): (302, PAGE),
    ("GET", "/users/<text:user_id>"): (302, PAGE),
    ("GET", SIGN_IN): (200, "the sign-in form itself"),
    ("POST", SIGN_IN): (401, "signing in: checks the key the form sends (none here)"),
    ("POST", "/sign-out"): (302, "signing out only forgets the session"),
    ("GET", "/language/<code>"): (302, "the language switch only sets a cookie"),
    ("GET", "/assets/<path:filename>"): (200, "the dashboard's scripts, styles and icons"),
    ("GET", "/v1/openapi.json"): (200, "the API's description, `security: []` in the document itself"),
}

PLAUSIBLE = {"UnicodeConverter": "u1", "TextConverter": "tool:check_in", "PathConverter": "dashboard.css"}
"""A value of each converter that routes to the rule's view (by the converter's class name)."""
PLAUSIBLE_BY_NAME = {
    "kind": "user",
    "key": "u1",
    "campaign_id": "c1",
    "code": "en",
    "name": "no_such_projection",
}
"""Where a parameter takes values from a list. The store is empty and no projection has this name,
so a request let through changes nothing (an erasure or a rebuild of nothing is a 404)."""
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    db = tmp_path_factory.mktemp("doors") / "doors.db"
    settings = {
        "COHORTLINE_DATABASE_URL": f"sqlite:///{db}",
        "COHORTLINE_API_KEYS": ",".join(f"{key}:{role}" for role, key in KEYS.items()),
        "COHORTLINE_RATE_LIMIT": "off",
    }
    system = build_system(load_settings(settings))
    try:
        yield create_app(system.api_context())
    finally:
        system.close()


def doors(app: Flask) -> list[tuple[str, Rule, str]]:
    """(method, rule, a path that routes to it) for every rule and method of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        values = {}
        for name, converter in rule._converters.items():
            kind = type(converter).__name__
            assert kind in PLAUSIBLE, f"{rule.rule}: no plausible value for a {kind} yet"
            values[name] = PLAUSIBLE_BY_NAME.get(name, PLAUSIBLE[kind])
        _, path = rule.build(values, append_unknown=False)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            found.append((method, rule, path))
    return found


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}


def code_of(response: Any) -> str | None:
    return (response.get_json(silent=True) or {}).get("error", {}).get("code")


def refused(response: Any, status: int, code: str) -> bool:
    return response.status_code == status and code_of(response) == code


def lacking(role: str) -> list[str]:
    return [r for r in KEYS if r != role and r != "admin"]


def door_problems(app: Flask) -> list[str]:
    """What is wrong with the app's doors; empty when every door is guarded or listed as public."""
    client = app.test_client()
    problems: list[str] = []
    seen = set()
    for method, rule, path in doors(app):
        door = (method, rule.rule)
        seen.add(door)
        view = app.view_functions[rule.endpoint]
        role = getattr(view, "required_role", None)
        where = f"{method} {rule.rule}"

        if door in PUBLIC:
            status, reason = PUBLIC[door]
            if role is not None:
                problems.append(f"{where} is listed as public but requires {role!r}")
            answer = client.open(path, method=method)
            if answer.status_code != status:
                problems.append(f"{where}: a public door answered {answer.status_code}, not {status}")
            to_sign_in = answer.headers.get("Location", "").startswith(f"{SIGN_IN}?next=")
            if reason.startswith(PAGE) and not to_sign_in:
                problems.append(f"{where}: a page without a session did not send to sign-in")
            continue

        if role is None:
            problems.append(f"{where} has no required_role (api.auth.require) and is not in PUBLIC")
            continue
        if role not in KEYS:
            problems.append(f"{where} requires {role!r}, which is no role of COHORTLINE_API_KEYS")
            continue

        for headers in ({}, bearer(UNKNOWN_KEY), bearer(""), {"Authorization": f"Token {KEYS['admin']}"}):
            answer = client.open(path, method=method, headers=headers)
            if not refused(answer, 401, "unauthorized"):
                problems.append(f"{where} with {headers or 'no key'}: {answer.status_code}, not 401")
        for other in lacking(role):
            answer = client.open(path, method=method, headers=bearer(KEYS[other]))
            if not refused(answer, 403, "forbidden"):
                problems.append(f"{where} with a {other} key: {answer.status_code}, not 403 forbidden")
        for holder in (role, "admin"):
            answer = client.open(path, method=method, headers=bearer(KEYS[holder]))
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                problems.append(f"{where} refused its own role's key ({holder}): {answer.status_code}")
    for door in PUBLIC.keys() - seen:
        problems.append(f"PUBLIC lists {door}, which is no route of the app")
    return problems


def test_every_route_holds_a_role_or_is_listed_as_public(app):
    assert door_problems(app) == []
    guarded = [d for d in doors(app) if (d[0], d[1].rule) not in PUBLIC]
    assert len(guarded) >= 25, "the URL map lost its API routes"


def test_a_route_added_without_a_role_or_a_public_entry_fails_the_check(app):
    context = app.config["COHORTLINE"]

    def answer(**_: str) -> dict[str, bool]:
        return {"ok": True}

    unguarded = create_app(context)
    unguarded.add_url_rule("/v1/new-door", "new_door", answer)
    assert door_problems(unguarded) == [
        "GET /v1/new-door has no required_role (api.auth.require) and is not in PUBLIC"
    ]

    guarded = create_app(context)
    guarded.add_url_rule("/v1/new-door/<item>", "new_door", require("auditor")(answer), methods=["POST"])
    assert door_problems(guarded) == []

    listed_but_guarded = create_app(context)
    listed_but_guarded.view_functions["openapi.openapi"] = require("reader")(answer)
    assert "GET /v1/openapi.json is listed as public but requires 'reader'" in door_problems(
        listed_but_guarded
    )


def write_key_doors(app: Flask) -> list[tuple[str, Rule, str]]:
    taking = {(op.method, op.path) for op in OPERATIONS if op.write_key}
    found = [d for d in doors(app) if (d[0], d[1].rule) in taking]
    assert {(method, rule.rule) for method, rule, _ in found} == taking
    return found


def test_the_segment_routes_take_the_key_as_basic_user_or_write_key_and_check_it_alike(app):
    client = app.test_client()
    segment = write_key_doors(app)
    assert {rule.rule for _, rule, _ in segment} >= {
        "/v1/batch",
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/screen",
    }
    for method, rule, path in segment:
        role = app.view_functions[rule.endpoint].required_role
        for sent in ("basic", "writeKey"):

            def call(key: str, sent: str = sent, method: str = method, path: str = path) -> Any:
                if sent == "basic":
                    return client.open(path, method=method, headers=basic(key), json={})
                return client.open(path, method=method, json={"writeKey": key})

            where = f"{method} {rule.rule} ({sent})"
            assert refused(call(UNKNOWN_KEY), 401, "unauthorized"), where
            for other in lacking(role):
                assert refused(call(KEYS[other]), 403, "forbidden"), (where, other)
            for holder in (role, "admin"):
                let_in = call(KEYS[holder])
                assert refused(let_in, 422, "validation_failed"), (where, holder, let_in.json)
        assert refused(client.open(path, method=method, headers=basic(""), json={}), 401, "unauthorized")


def test_no_other_route_takes_a_write_key(app):
    client = app.test_client()
    segment = {(method, rule.rule) for method, rule, _ in write_key_doors(app)}
    for method, rule, path in doors(app):
        if (method, rule.rule) in PUBLIC or (method, rule.rule) in segment:
            continue
        where = f"{method} {rule.rule}"
        as_basic = client.open(path, method=method, headers=basic(KEYS["admin"]))
        assert refused(as_basic, 401, "unauthorized"), where
        if method == "POST":
            in_body = client.open(path, method=method, json={"writeKey": KEYS["admin"]})
            assert refused(in_body, 401, "unauthorized"), where


def signed_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post(SIGN_IN, data={"key": KEYS[role], "next": "/"})
    assert answer.status_code == 302, (role, answer.status_code)
    return client


def test_a_signed_in_session_reads_as_its_key_and_never_writes(app):
    """The dashboard's session cookie stands in for the key on GET only (api.auth): it is refused
    what its key lacks, and every write without the header is a 401, even for an admin."""
    for role in ("reader", "admin"):
        client = signed_in(app, role)
        for method, rule, path in doors(app):
            role_needed = getattr(app.view_functions[rule.endpoint], "required_role", None)
            if (method, rule.rule) in PUBLIC or role_needed is None:
                continue
            answer = client.open(path, method=method)
            where = f"{method} {rule.rule} signed in as {role}"
            if method != "GET":
                assert refused(answer, 401, "unauthorized"), where
            elif role in (role_needed, "admin"):
                assert answer.status_code not in (401, 403) and answer.status_code < 500, where
            else:
                assert refused(answer, 403, "forbidden"), where

    for role in ("producer", "auditor"):  # keys without `reader` cannot sign in
        client = app.test_client()
        assert client.post(SIGN_IN, data={"key": KEYS[role]}).status_code == 403
        assert refused(client.get("/v1/audit/log"), 401, "unauthorized")
