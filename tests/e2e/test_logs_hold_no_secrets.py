"""What the processes log holds no key and no personal data: requests carrying both (valid and
refused ones, Segment calls, searches, signing in) are sent to a real `cohortline serve` on the
embedded default, and to serve + relay + worker on the full stack, and then every line each process
wrote (gunicorn, the API workers, the projections process, the relay and the Faust worker) is
searched for the keys sent, valid or not, and for the personal-data values (events.md: attributes,
a ticket's subject, a rating's comment, a custom event's properties; Segment's traits)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import requests

from tests.processes import Command, serve, wait_until

PERSONAL_TAG, KEY_TAG, ID_TAG = (uuid.uuid4().hex[:12] for _ in range(3))
"""Every personal value holds PERSONAL_TAG and every key KEY_TAG, so a log that holds either in any
form that keeps letters and digits (quoted, escaped, URL-encoded) is caught; ids hold ID_TAG."""
ROLES = ("producer", "reader", "auditor", "admin")
KEYS = {role: f"logs-{role}-{KEY_TAG}" for role in ROLES}
UNKNOWN = [f"logs-unknown-bearer-{KEY_TAG}", f"logs-unknown-basic-{KEY_TAG}", f"logs-unknown-write-{KEY_TAG}"]
WRONG_SIGN_IN = f"logs-unknown-sign-in-{KEY_TAG}"

EMAIL = f"ada.lovelace.{PERSONAL_TAG}@example.org"
NAME = f"Ada Lovelace-{PERSONAL_TAG}"
PHONE = f"+44 20 7946 {PERSONAL_TAG}"
ADDRESS = f"12 Analytical Row {PERSONAL_TAG}, London"
SUBJECT = f"card ending {PERSONAL_TAG} charged twice"
COMMENT = f"the agent {PERSONAL_TAG} was rude"
PROPERTY = f"search-term-{PERSONAL_TAG}"
PROFILE = {"email": EMAIL, "name": NAME, "phone": PHONE, "address": ADDRESS}

USER = f"logs-user-{ID_TAG}"
AT = "2025-03-03T10:00:00Z"
REQUEST_TIMEOUT_S = 30


def secrets() -> list[str]:
    """What no log may hold: the tags of the keys and personal values, and each key sent as a Basic
    header carries it (base64, which hides the tag)."""
    sent = [*KEYS.values(), *UNKNOWN, WRONG_SIGN_IN]
    return [PERSONAL_TAG, KEY_TAG, *(base64.b64encode(f"{key}:".encode()).decode() for key in sent)]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def event(type_: str, **data: object) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "user_id": USER, "occurred_at": AT, "data": data}


def segment(kind: str, n: int, **fields: object) -> dict:
    return {"userId": USER, "messageId": f"logs-{ID_TAG}-{n}", "timestamp": AT, **fields, "type": kind}


def drive(base: str) -> int:
    """Send requests that carry keys and personal data, each answered as expected; the log position
    of the last event appended."""

    def call(method: str, path: str, expected: int, **kwargs: object) -> requests.Response:
        answer = requests.request(method, f"{base}{path}", timeout=REQUEST_TIMEOUT_S, **kwargs)
        assert answer.status_code == expected, (method, path, answer.status_code, answer.text)
        return answer

    producer, reader, auditor, admin = (bearer(KEYS[r]) for r in ROLES)
    history = [
        event("UserRegistered", channel="app", attributes=PROFILE),
        event("UserProfileUpdated", attributes={"address": ADDRESS, "phone": PHONE}),
        event("TicketOpened", ticket_id=f"t-{ID_TAG}", category="billing", subject=SUBJECT),
        event("SatisfactionRated", score=1, ticket_id=f"t-{ID_TAG}", comment=COMMENT),
        event("EventTracked", name="Searched", properties={"term": PROPERTY, "email": EMAIL}),
    ]
    call("POST", "/v1/events", 201, json={"events": history}, headers=producer)

    bad_time = {**event("UserRegistered", attributes=PROFILE), "occurred_at": f"{EMAIL} at noon"}
    too_long = event("TicketOpened", ticket_id=f"t2-{ID_TAG}", subject=(SUBJECT + " ") * 100)
    unknown_field = event("SessionStarted", session_id="s1", email=EMAIL)
    call("POST", "/v1/events", 422, json={"events": [bad_time, too_long, unknown_field]}, headers=producer)
    call(
        "POST", "/v1/events", 422, json={"events": [event("EventTracked", name=EMAIL * 10)]}, headers=producer
    )
    broken = '{"events": [{"type": "UserRegistered", "data": {"attributes": {"email": "' + EMAIL + '"'
    call("POST", "/v1/events", 400, data=broken, headers={**producer, "Content-Type": "application/json"})
    again = event("TicketOpened", ticket_id=f"t-{ID_TAG}", subject=SUBJECT)
    call("POST", "/v1/events", 409, json={"events": [again]}, headers=producer)
    call("POST", "/v1/events", 403, json={"events": history}, headers=reader)
    call("POST", "/v1/events", 401, json={"events": history}, headers=bearer(UNKNOWN[0]))
    call("GET", "/v1/status", 401, headers=bearer(UNKNOWN[0]))

    identify = segment("identify", 1, traits=PROFILE)
    call("POST", "/v1/identify", 200, json=identify, headers=basic(KEYS["producer"]))
    track = segment("track", 2, event="Searched", properties={"term": PROPERTY, "email": EMAIL})
    last = call("POST", "/v1/batch", 200, json={"batch": [track], "writeKey": KEYS["producer"]}).json()
    late = segment("identify", 3, traits=PROFILE, timestamp=f"{PHONE} yesterday")
    call("POST", "/v1/batch", 422, json={"batch": [late]}, headers=basic(KEYS["producer"]))
    call("POST", "/v1/identify", 401, json=identify, headers=basic(UNKNOWN[1]))
    call("POST", "/v1/batch", 401, json={"batch": [track], "writeKey": UNKNOWN[2]})
    call("POST", "/v1/batch", 403, json={"batch": [track]}, headers=basic(KEYS["reader"]))

    call("GET", "/v1/users/search", 200, params={"q": EMAIL}, headers=reader)
    call("GET", "/v1/users/search", 400, params={"q": EMAIL + "\x00"}, headers=reader)
    call("GET", "/v1/users/search", 400, params={"after": EMAIL}, headers=reader)
    call("GET", f"/v1/users/{EMAIL}", 404, headers=reader)
    events = call("GET", f"/v1/audit/streams/user/{USER}/events", 200, headers=auditor).json()["events"]
    assert events[0]["data"]["attributes"] == PROFILE, "the personal data was sent and stored"

    call("POST", "/sign-in", 401, data={"key": WRONG_SIGN_IN}, allow_redirects=False)
    call("POST", "/sign-in", 302, data={"key": KEYS["reader"]}, allow_redirects=False)
    call("POST", f"/v1/admin/users/{USER}/erase", 403, headers=auditor)
    erased = call("POST", f"/v1/admin/users/{USER}/erase", 202, headers=admin).json()["position"]
    assert erased > last["last_position"]
    return erased


def caught_up(base: str, position: int) -> bool:
    status = requests.get(f"{base}/v1/status", headers=bearer(KEYS["reader"]), timeout=REQUEST_TIMEOUT_S)
    projections = status.json()["projections"]
    return bool(projections) and all(p["position"] >= position for p in projections)


def assert_no_secret_in(*commands: Command) -> None:
    for command in commands:
        logged = Path(command.log_path).read_text(errors="replace")
        assert logged.strip(), f"{command.name} logged nothing: the wrong file?"
        leaked = [secret for secret in secrets() if secret in logged]
        lines = [line for line in logged.splitlines() if any(s in line for s in leaked)]
        assert not leaked, f"{command.name} logged {leaked}:\n" + "\n".join(lines[:20])


def keys_env() -> str:
    return ",".join(f"{key}:{role}" for role, key in KEYS.items())


def test_the_embedded_server_logs_no_key_and_no_personal_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = keys_env()
    server, base = serve(env, tmp_path)
    try:
        position = drive(base)
        wait_until(lambda: caught_up(base, position), 120, "the projections to catch up", server)
    finally:
        stopped = server.stop()
    assert stopped == 0, server.output()
    logged = server.log_path.read_text(errors="replace")
    assert "projections following the event store in process" in logged, "the projections' log is here"
    assert_no_secret_in(server)


def test_the_full_stack_logs_no_key_and_no_personal_data(full_stack_env, tmp_path):
    env = dict(full_stack_env, COHORTLINE_API_KEYS=keys_env())
    server, base = serve(env, tmp_path)
    relay = Command(["relay"], env, tmp_path, "relay")
    worker = Command(["worker"], env, tmp_path, "worker")
    commands = (server, relay, worker)
    try:
        position = drive(base)
        wait_until(lambda: caught_up(base, position), 180, "the worker to catch up", *commands)
    finally:
        stopped = {c.name: c.stop(timeout=30) for c in (worker, relay, server)}
    assert stopped == {"worker": 0, "relay": 0, "serve": 0}, [c.output() for c in commands]
    assert_no_secret_in(*commands)
