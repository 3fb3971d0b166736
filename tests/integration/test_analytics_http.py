"""The analytics endpoints on both storages: the demo history posted over HTTP, projected, and every
answer compared with the reference definitions computed over the stored log."""

from __future__ import annotations

from datetime import date

import pytest

from infra.demo import demo_events
from streams.local import LocalFollower
from streams.log_reader import LogReader
from tests import reference
from tests.integration.test_append_http import PRODUCER

READER = {"Authorization": "Bearer read"}
START, END = date(2025, 3, 1), date(2025, 5, 4)


@pytest.fixture
def history(client, system):
    raw = demo_events()
    for start in range(0, len(raw), 1000):
        assert (
            client.post(
                "/v1/events", json={"events": raw[start : start + 1000]}, headers=PRODUCER
            ).status_code
            == 201
        )
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    return LogReader(system.event_store).read(0, 100_000)


def get(client, path: str, **params) -> dict:
    response = client.get(path, query_string=params, headers=READER)
    assert response.status_code == 200, response.json
    return response.json


def test_every_answer_equals_the_definitions(client, history):
    watermark = max(e.occurred_at for e in history)
    dates = {"from": START.isoformat(), "to": END.isoformat()}
    body = get(client, "/v1/activity/active-users", granularity="week", **dates)
    assert body["series"] == reference.active_users(history, "week", START, END)
    assert body["as_of"] == len(history) and body["watermark"] == watermark.isoformat().replace("+00:00", "Z")
    shopping = get(client, "/v1/activity/active-users", granularity="day", filter="scene:shopping", **dates)
    assert shopping["series"] == reference.active_users(history, "day", START, END, "scene:shopping")
    assert get(client, "/v1/activity/stickiness", **dates)["series"] == reference.stickiness(
        history, START, END
    )
    for granularity in ("week", "month"):
        assert get(client, "/v1/activity/frequency", granularity=granularity, **dates)[
            "series"
        ] == reference.frequency(history, granularity, START, END)
        assert get(client, "/v1/activity/lifecycle", granularity=granularity, **dates)[
            "series"
        ] == reference.lifecycle(history, granularity, START, END)
    for params in (
        {"granularity": "week", "cohort": "first_seen", "return": "active", "mode": "on"},
        {
            "granularity": "week",
            "cohort": "signup",
            "return": "order",
            "mode": "on_or_after",
            "breakdown": "channel",
        },
        {
            "granularity": "month",
            "cohort": "first_order",
            "return": "order",
            "mode": "on",
            "breakdown": "country",
        },
        {
            "granularity": "day",
            "cohort": "first_seen",
            "return": "active",
            "mode": "on_or_after",
            "periods": "14",
        },
    ):
        body = get(client, "/v1/retention/cohorts", **params, **dates)
        span = len(
            list(
                __import__("projections.periods", fromlist=["x"]).periods_between(
                    params["granularity"], START, END
                )
            )
        )
        periods = int(params.get("periods", span - 1))
        assert body["cohorts"] == reference.retention(
            history,
            params["granularity"],
            params["cohort"],
            params["return"],
            params["mode"],
            START,
            END,
            periods,
            watermark,
            params.get("breakdown"),
        ), params
    body = get(client, "/v1/orders/repurchase", **dates)
    assert {k: body[k] for k in reference.repurchase(history, START, END)} == reference.repurchase(
        history, START, END
    )
    for granularity in ("day", "week", "month"):
        body = get(client, "/v1/value/revenue", granularity=granularity, **dates)
        assert body["granularity"] == granularity
        assert {"series": body["series"]} == reference.revenue(history, granularity, START, END), granularity


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "hour", "from": "2025-03-01", "to": "2025-04-01"}, "granularity"),
        ({"to": "2025-04-01"}, "from"),
        ({"from": "2025-03-01", "to": "2025-02-01"}, "to"),
        ({"from": "2025-03-01", "to": "2025-04-01", "colour": "red"}, "colour"),
        ({"from": "2025-03-01", "to": "2025-04-01", "filter": "scene:casino"}, "filter"),
        ({"from": "2025-03-01", "to": "2025-04-01", "wait_ms": "20000"}, "wait_ms"),
        ({"from": "2001-01-01", "to": "2025-04-01", "granularity": "day"}, "to"),
    ],
)
def test_bad_parameters_are_named(client, params, field):
    response = client.get("/v1/activity/active-users", query_string=params, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "year", "from": "2025-03-01", "to": "2025-04-01"}, "granularity"),
        ({"from": "2025-03-01", "to": "2025-02-28"}, "to"),
        ({"from": "2025-03-01"}, "to"),
    ],
)
def test_bad_revenue_parameters_are_named(client, params, field):
    response = client.get("/v1/value/revenue", query_string=params, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field


def test_analytics_need_the_reader_role(client):
    params = {"from": "2025-03-01", "to": "2025-04-01"}
    assert client.get("/v1/retention/cohorts", query_string=params).status_code == 401
    assert client.get("/v1/retention/cohorts", query_string=params, headers=PRODUCER).status_code == 403


def all_pages(client, **params) -> list[dict]:
    found, after = [], None
    while True:
        body = get(client, "/v1/users/search", size=100, **params, **({"after": after} if after else {}))
        found += body["users"]
        after = body["next"]
        if after is None:
            return found


def test_search_by_lifecycle_agrees_with_each_users_state(client, history):
    everyone = all_pages(client)
    assert len(everyone) == len({e.user_id for e in history})
    states = {u["user_id"]: u["lifecycle"] for u in everyone}
    assert set(states.values()) >= {"active", "at_risk"}
    for state in ("new", "active", "resurrected", "at_risk", "churned"):
        found = {u["user_id"] for u in all_pages(client, lifecycle=state)}
        assert found == {u for u, s in states.items() if s == state}, state
    one = next(iter(states))
    assert get(client, f"/v1/users/{one}")["lifecycle"] == states[one]


def test_every_customers_rfm_and_segment_search_equal_the_definitions(client, history):
    watermark = max(e.occurred_at for e in history)
    want = reference.rfm(history, watermark)
    everyone = {u["user_id"]: u for u in all_pages(client)}
    for user_id, user in everyone.items():
        rfm = want.get(user_id)
        assert user["segment"] == (rfm["segment"] if rfm else None), user_id
        if rfm is not None:
            shown = {k: user["rfm"][k] for k in ("recency_days", "frequency", "r", "f", "m", "segment")}
            assert shown == {k: rfm[k] for k in shown}, user_id
    assert len({rfm["segment"] for rfm in want.values()}) >= 3
    for segment in reference.RFM_SEGMENTS.values():
        found = {u["user_id"] for u in all_pages(client, segment=segment)}
        assert found == {u for u, rfm in want.items() if rfm["segment"] == segment}, segment
    one = next(iter(want))
    assert get(client, f"/v1/users/{one}")["rfm"]["segment"] == want[one]["segment"]
    response = client.get("/v1/users/search", query_string={"segment": "whales"}, headers=READER)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == "segment"
