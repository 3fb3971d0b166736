"""A schema version bump: stored v1 events are upcast on every read, by the application and by the
log the projections follow."""

import pytest

from domain.envelope import parse_envelope
from domain.events import SessionStarted
from streams.log_reader import LogReader


def upcast_v1_v2(state: dict) -> None:
    """v2 of SessionStarted names the platform always ("unknown" when v1 did not say)."""
    state["data"] = {**state["data"], "platform": state["data"].get("platform", "unknown")}


@pytest.fixture
def session_started_v2(monkeypatch):
    monkeypatch.setattr(SessionStarted, "class_version", 2, raising=False)
    monkeypatch.setattr(SessionStarted, "upcast_v1_v2", staticmethod(upcast_v1_v2), raising=False)


def raw(platform=None):
    data = {"platform": platform} if platform else {}
    return parse_envelope(
        {"type": "SessionStarted", "user_id": "u1", "occurred_at": "2011-01-04T10:00:00Z", "data": data}
    )


def test_stored_v1_events_replay_as_v2(system, request):
    system.event_store.record([raw(), raw("ios")])
    assert [f.schema_version() for f in system.event_store.stream_events("user", "u1")] == [1, 1]

    request.getfixturevalue("session_started_v2")
    replayed = system.event_store.stream_events("user", "u1")
    assert [f.data["platform"] for f in replayed] == ["unknown", "ios"]
    records = LogReader(system.event_store).read(0, 10)
    assert [(r.schema_version, r.data["platform"]) for r in records] == [(2, "unknown"), (2, "ios")]

    system.event_store.record([raw("android")])
    assert [f.data["platform"] for f in system.event_store.stream_events("user", "u1")] == [
        "unknown",
        "ios",
        "android",
    ]
