"""Producers appending at the same time, over HTTP, to the same users and orders, through two API
processes on one PostgreSQL: nothing is lost, nothing is stored twice, every rule holds."""

from __future__ import annotations

import multiprocessing
import uuid

import requests
from sqlalchemy import create_engine, text

from infra.chain import ChainedRow, verify
from tests.processes import serve

PRODUCERS = 12
ROUNDS = 25
USERS = [f"u{n}" for n in range(6)]
HEADERS = {"Authorization": "Bearer prod"}
NAMESPACE = uuid.UUID("0f5f6f1e-7a55-4b8e-9b8b-0d3b1f4c2e11")
SETUP_IDS = [str(uuid.uuid5(NAMESPACE, "setup-placed")), str(uuid.uuid5(NAMESPACE, "setup-paid"))]


def shared_event(round_: int) -> dict:
    """An event every producer sends in a round (same id, same content): it must be stored once."""
    user = USERS[round_ % len(USERS)]
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{round_}:{user}")),
        "type": "SceneVisited",
        "user_id": user,
        "occurred_at": f"2011-01-{round_ + 1:02d}T09:00:00Z",
        "data": {"scene": "content"},
    }


def own_batch(producer: int, round_: int) -> list[dict]:
    order = f"o-{producer}-{round_}"
    user = USERS[(producer + round_) % len(USERS)]
    at = f"2011-01-{round_ + 1:02d}T10:{producer:02d}:00Z"
    return [
        {"event_id": str(uuid.uuid4()), "type": "SessionStarted", "user_id": u, "occurred_at": at}
        for u in USERS
    ] + [
        {
            "event_id": str(uuid.uuid4()),
            "type": "OrderPlaced",
            "user_id": user,
            "occurred_at": at,
            "data": {"order_id": order, "amount": "10", "currency": "EUR"},
        },
        {
            "event_id": str(uuid.uuid4()),
            "type": "OrderPaid",
            "user_id": user,
            "occurred_at": at,
            "data": {"order_id": order, "amount": "10"},
        },
        shared_event(round_),
    ]


def produce(args: tuple[int, list[str]]) -> dict:
    """One producer: each batch sent twice (a retry), then a refund race on the shared order."""
    producer, bases = args
    accepted: list[str] = []
    duplicates = 0
    for round_ in range(ROUNDS):
        batch = own_batch(producer, round_)
        for attempt in range(2):
            response = requests.post(
                f"{bases[(round_ + attempt) % 2]}/v1/events",
                json={"events": batch},
                headers=HEADERS,
                timeout=60,
            )
            assert response.status_code == 201, response.text
            duplicates += response.json()["duplicates"]
            if attempt == 0:
                accepted += [e["event_id"] for e in batch]
    refund = {
        "event_id": str(uuid.uuid4()),
        "type": "OrderRefunded",
        "user_id": "u0",
        "occurred_at": "2011-02-01T10:00:00Z",
        "data": {"order_id": "shared", "amount": "4"},
    }
    response = requests.post(
        f"{bases[producer % 2]}/v1/events", json={"events": [refund]}, headers=HEADERS, timeout=60
    )
    refunded = response.status_code == 201
    if refunded:
        accepted.append(refund["event_id"])
    else:
        assert response.json()["error"]["details"][0]["code"] == "refund_exceeds_paid"
    return {"accepted": accepted, "duplicates": duplicates, "refunded": refunded}


def test_concurrent_producers_lose_and_duplicate_nothing(pg_url, tmp_path):
    env = {
        "COHORTLINE_DATABASE_URL": pg_url,
        "COHORTLINE_API_KEYS": "prod:producer",
        "COHORTLINE_RATE_LIMIT": "off",
        "PATH": "/usr/bin:/bin",
    }
    for n in range(2):
        (tmp_path / f"api{n}").mkdir()
    servers = [serve(env, tmp_path / f"api{n}") for n in range(2)]
    try:
        bases = [base for _, base in servers]
        setup = [
            {
                "event_id": SETUP_IDS[0],
                "type": "OrderPlaced",
                "user_id": "u0",
                "occurred_at": "2011-01-01T08:00:00Z",
                "data": {"order_id": "shared", "amount": "10", "currency": "EUR"},
            },
            {
                "event_id": SETUP_IDS[1],
                "type": "OrderPaid",
                "user_id": "u0",
                "occurred_at": "2011-01-01T08:01:00Z",
                "data": {"order_id": "shared", "amount": "10"},
            },
        ]
        assert requests.post(f"{bases[0]}/v1/events", json={"events": setup}, headers=HEADERS, timeout=30).ok
        with multiprocessing.get_context("spawn").Pool(PRODUCERS) as pool:
            results = pool.map(produce, [(p, bases) for p in range(PRODUCERS)])
    finally:
        for server, _ in servers:
            server.stop()

    accepted = {event_id for r in results for event_id in r["accepted"]} | set(SETUP_IDS)
    shared = {shared_event(r)["event_id"] for r in range(ROUNDS)}
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM cohortline_events")).scalar()
        ids = {str(r[0]) for r in conn.execute(text("SELECT event_id FROM cohortline_events"))}
        gaps = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT originator_id, max(originator_version) AS v, count(*) AS n "
                "FROM cohortline_events GROUP BY originator_id) s WHERE v <> n"
            )
        ).scalar()
        chain = verify(
            ChainedRow(
                r.id,
                str(r.originator_id),
                r.originator_version,
                r.topic,
                bytes(r.state),
                str(r.event_id),
                r.hash,
            )
            for r in conn.execute(text("SELECT * FROM cohortline_events ORDER BY id"))
        )
    engine.dispose()
    assert chain.ok and chain.events == rows, chain
    assert sum(r["refunded"] for r in results) == 2
    assert ids == accepted and shared <= ids
    assert rows == len(ids)
    assert gaps == 0
    assert sum(r["duplicates"] for r in results) >= PRODUCERS * ROUNDS * len(own_batch(0, 0))
