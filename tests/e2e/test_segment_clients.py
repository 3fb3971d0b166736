"""Segment's and RudderStack's own Python libraries, pointed at Cohortline, make exact analytics.

A product system instrumented with segment-analytics-python or rudder-sdk-python only changes its
host (api.md "Segment-compatible ingestion"). Each test sends a small shop's history through the real
library — identify, sign-up, product view, orders, a custom track, page, screen, a refund, a check-in
— via a proxy that loses the server's first answers, so the library retries batches the server has
already appended; on the embedded server the sender's clock is also off by an hour or more. The
figures expected are computed here from what was sent, sharing nothing with the server's code: every
message's events are in the log exactly once at the real time, and revenue, active users and the
user states count each of them once, on the embedded server and on the full stack."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.e2e.flaky_proxy import Exchange, FlakyProxy
from tests.processes import Command, serve, wait_until

KEYS = "prod-key:producer,read-key:reader+auditor"
READER = {"Authorization": "Bearer read-key"}
CURRENCY = "GBP"


# What the shop sends


@dataclass(frozen=True)
class Order:
    order_id: str
    products: tuple[tuple[str, str, int], ...]  # sku, unit price, quantity
    total: str | None = None  # else the products' sum is the amount (the mapping's last resort)


@dataclass(frozen=True)
class Shopper:
    user_id: str
    traits: dict[str, Any]
    orders: tuple[Order, ...]
    refunds: tuple[tuple[str, str], ...] = ()  # order id, amount refunded
    watches_video: bool = False


SHOPPERS = (
    Shopper(
        "ada",
        {"email": "ada@example.com", "plan": "pro"},
        (Order("A-1001", (("mug", "12.00", 2),), total="25.50"),),  # 24.00 of goods and shipping
        refunds=(("A-1001", "5.25"),),
        watches_video=True,
    ),
    Shopper(
        "bo",
        {"email": "bo@example.com", "name": "Bo"},
        (
            Order("B-2001", (("tee", "19.99", 1),), total="19.99"),
            Order("B-2002", (("sock", "4.99", 3), ("cap", "10.00", 1))),  # no total: 24.97
        ),
        watches_video=True,
    ),
    Shopper(
        "cy",
        {"email": "cy@example.com"},
        (Order("C-3001", (("lamp", "100.00", 1),), total="100.00"),),
        refunds=(("C-3001", "100.00"),),
    ),
)
VISITOR = "anon-7f3a"
"""Someone who only loads a page, known by an anonymousId alone."""
LURKER = ("dee", {"email": "dee@example.com"})
"""Someone only identified: known, never active (a profile update is not activity)."""


def segment_client(host: str, on_error: Callable[..., None]) -> SegmentClient:
    """segment-analytics-python: plain JSON, the write key as HTTP Basic user and as `writeKey`."""
    return SegmentClient(
        write_key="prod-key",
        host=host,
        on_error=on_error,
        sync_mode=False,
        max_retries=3,
        upload_size=10,
        gzip=False,
        timeout=10,
    )


def rudderstack_client(host: str, on_error: Callable[..., None]) -> RudderClient:
    """rudder-sdk-python: gzip bodies (its default), the write key as HTTP Basic user only."""
    return RudderClient(
        write_key="prod-key",
        host=host,
        on_error=on_error,
        sync_mode=False,
        max_retries=3,
        upload_size=10,
        gzip=True,
        timeout=10,
    )


LIBRARIES = {"segment-analytics-python": segment_client, "rudder-sdk-python": rudderstack_client}


def send_history(library: SegmentClient | RudderClient) -> None:
    """The shop's history through a library's calls, in the order it happens; flushed and shut down."""
    for shopper in SHOPPERS:
        user = shopper.user_id
        library.identify(user, traits=shopper.traits)
        library.track(user, "Signed Up", {"method": "email"})
        library.track(user, "Product Viewed", {"sku": shopper.orders[0].products[0][0]})
        for order in shopper.orders:
            properties: dict[str, Any] = {
                "order_id": order.order_id,
                "currency": CURRENCY,
                "products": [
                    {"product_id": sku, "sku": sku, "price": float(price), "quantity": quantity}
                    for sku, price, quantity in order.products
                ],
            }
            if order.total is not None:
                properties["total"] = float(order.total)
            library.track(user, "Order Completed", properties)
        if shopper.watches_video:
            library.track(user, "Video Played", {"video_id": "intro", "position": 12})
        library.page(user, category="Docs", name="Pricing")
        library.screen(user, name="Home")
        for order_id, amount in shopper.refunds:
            library.track(
                user, "Order Refunded", {"order_id": order_id, "total": float(amount), "currency": CURRENCY}
            )
        library.track(user, "Checked In", {"streak": 3})
    library.page(anonymous_id=VISITOR)
    library.identify(LURKER[0], traits=LURKER[1])
    library.flush()
    library.shutdown()


# What each message must have made (api.md and the spec's mapping), from the message as sent


@dataclass(frozen=True)
class Expected:
    """One event a message must have made: its type, its user and the data fields it must carry."""

    message_id: str
    type: str
    user_id: str
    data: dict[str, Any]
    stamped: datetime  # the message's own `timestamp`, by the sender's clock
    key: tuple[str, ...] = field(default=())  # data fields that single it out among the user's events


def expected_events(message: dict[str, Any]) -> list[Expected]:
    user = message.get("userId") or message["anonymousId"]
    kind = message["type"]
    properties = message.get("properties", {})

    def made(type_: str, data: dict[str, Any], *key: str) -> Expected:
        return Expected(message["messageId"], type_, user, data, instant(message["timestamp"]), key)

    def tracked(name: str) -> Expected:
        return made("EventTracked", {"name": name}, "name")

    if kind == "identify":
        # Segment puts traits at the top; RudderStack's library puts them in context.traits
        traits = message.get("traits", message.get("context", {}).get("traits"))
        return [made("UserProfileUpdated", {"attributes": traits})]
    if kind == "page":
        parts = [message.get("category"), message.get("name")]
        named = " ".join(p for p in parts if p)
        return [tracked(f"Viewed {named} Page" if named else "Loaded a Page")]
    if kind == "screen":
        return [tracked(f"Viewed {message['name']} Screen")]
    event = message["event"]
    if event == "Signed Up":
        return [made("UserRegistered", {})]
    if event == "Product Viewed":
        return [made("SceneVisited", {"scene": "shopping"})]
    if event == "Order Completed":
        order_id, amount = properties["order_id"], order_amount(properties)
        return [
            made("OrderPlaced", {"order_id": order_id, "amount": amount, "currency": CURRENCY}, "order_id"),
            made("OrderPaid", {"order_id": order_id, "amount": amount}, "order_id"),
        ]
    if event == "Order Refunded":
        amount = Decimal(repr(properties["total"]))
        return [made("OrderRefunded", {"order_id": properties["order_id"], "amount": amount}, "order_id")]
    return [tracked(event)]


def order_amount(properties: dict[str, Any]) -> Decimal:
    """`total`, else the products' price times quantity, in decimal from the JSON numbers sent."""
    if "total" in properties:
        return Decimal(repr(properties["total"]))
    return sum(
        (Decimal(repr(p["price"])) * p["quantity"] for p in properties["products"]),
        Decimal(0),
    )


ACTIVITY = {"UserRegistered", "SceneVisited", "OrderPlaced", "OrderPaid", "EventTracked"}
"""events.md: the types above that are user-initiated; UserProfileUpdated and OrderRefunded are not."""


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, text
    return moment.astimezone(UTC)


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):.2f}"


# Running it


@dataclass
class Stack:
    base: str
    watched: tuple[Command, ...]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Stack]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = KEYS
    env["COHORTLINE_RATE_LIMIT"] = "off"  # the libraries retry; limits are tested elsewhere
    server, base = serve(env, tmp_path)
    try:
        yield Stack(base, (server,))
    finally:
        server.stop()


@pytest.fixture
def full_stack(full_stack_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    env = dict(full_stack_env, COHORTLINE_API_KEYS=KEYS, COHORTLINE_RATE_LIMIT="off")
    server, base = serve(env, tmp_path)
    relay = Command(["relay"], env, tmp_path, "relay")
    worker = Command(["worker"], env, tmp_path, "worker")
    try:
        yield Stack(base, (server, relay, worker))
    finally:
        for command in (worker, relay, server):
            command.stop()


def read(stack: Stack, path: str, head: int, **params: Any) -> dict[str, Any]:
    """A query answered once the read models have applied the log up to `head`."""

    def answered() -> dict[str, Any] | None:
        response = requests.get(
            f"{stack.base}{path}",
            params={**params, "min_position": head, "wait_ms": 2000},
            headers=READER,
            timeout=15,
        )
        if response.status_code == 202:
            return None
        assert response.status_code == 200, (path, params, response.status_code, response.text)
        return response.json()

    return wait_until(answered, 120, f"{path} at position {head}", *stack.watched)


def batch_of(exchange: Exchange) -> tuple[str, ...]:
    return tuple(m["messageId"] for m in exchange.request_json()["batch"])


def through_library(library: str, stack: Stack, drop_first: int) -> None:
    """The history sent by `library` through a proxy dropping the first `drop_first` answers, then
    checked against everything the server shows."""
    start = datetime.now(UTC).date()
    errors: list[tuple[str, int]] = []
    with FlakyProxy(stack.base, drop_first=drop_first) as proxy:
        client = LIBRARIES[library](proxy.url, lambda e, batch: errors.append((repr(e), len(batch))))
        send_history(client)
        exchanges = proxy.exchanges
    assert errors == [], f"the library gave up on batches: {errors}"
    if library == "rudder-sdk-python":
        assert {e.headers.get("content-encoding") for e in exchanges} == {"gzip"}
    expected, head = check_wire(exchanges, drop_first)
    status = requests.get(f"{stack.base}/v1/status", headers=READER, timeout=10).json()
    assert status["head"] == head
    landed = check_log(stack, expected, exchanges)
    days = [start - timedelta(days=1), start, start + timedelta(days=1)]  # a run may cross midnight
    check_figures(stack, landed, head, days)
    check_users(stack, landed, head)


def check_wire(exchanges: list[Exchange], drop_first: int) -> tuple[list[Expected], int]:
    """Every request a batch to /v1/batch; the batches whose answers were lost resent with the same
    messages, appended once and then acknowledged as duplicates. The events expected and the head."""
    assert {(e.method, e.path) for e in exchanges} == {("POST", "/v1/batch")}
    assert [e.dropped for e in exchanges[:drop_first]] == [True] * drop_first
    batches = list(dict.fromkeys(batch_of(e) for e in exchanges))
    assert len(exchanges) == len(batches) + drop_first, [batch_of(e) for e in exchanges]
    assert {batch_of(e) for e in exchanges[: drop_first + 1]} == {batches[0]}, "the retries resent batch 1"
    messages = {m["messageId"]: m for e in exchanges for m in e.request_json()["batch"]}
    assert len(messages) == sum(len(b) for b in batches) == messages_sent()
    per_batch = [sum(len(expected_events(messages[i])) for i in b) for b in batches]
    answered: set[int] = set()
    for exchange in exchanges:
        body = exchange.response_json()
        assert exchange.status == 200 and body["success"] is True, (exchange.status, body)
        index = batches.index(batch_of(exchange))
        counts = (body["appended"], body["duplicates"])
        assert counts == ((0, per_batch[index]) if index in answered else (per_batch[index], 0)), (
            index,
            body,
        )
        answered.add(index)
    expected = [x for m in messages.values() for x in expected_events(m)]
    head = max(e.response_json()["last_position"] for e in exchanges)
    assert head == len(expected)
    return expected, head


def check_log(
    stack: Stack, expected: list[Expected], exchanges: list[Exchange]
) -> list[tuple[Expected, datetime]]:
    """Each message's events in the log exactly once, with the data sent, at the time the sender
    stamped corrected for its clock; each event with the time it landed at."""
    log = requests.get(f"{stack.base}/v1/audit/log", params={"limit": 10000}, headers=READER, timeout=30)
    assert log.status_code == 200, log.text
    events = log.json()["events"]
    assert len(events) == len(expected), Counter(e["type"] for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    assert {uuid.UUID(e["event_id"]).version for e in events} == {5}, "event ids are uuid5 of the messageId"
    first_carrier: dict[str, tuple[Exchange, datetime]] = {}
    for exchange in sorted(exchanges, key=lambda e: e.forwarded_at):
        body = exchange.request_json()
        for message in body["batch"]:
            sent = message.get("sentAt", body.get("sentAt"))
            first_carrier.setdefault(message["messageId"], (exchange, instant(sent)))
    landed = []
    for x in expected:
        found = [
            e
            for e in events
            if e["type"] == x.type
            and e["user_id"] == x.user_id
            and all(e["data"].get(k) == x.data[k] for k in x.key)
        ]
        assert len(found) == 1, (x, found)
        stored = found[0]
        for name, value in x.data.items():
            got = stored["data"].get(name)
            if isinstance(value, Decimal):
                assert got is not None and Decimal(str(got)) == value, (x, stored["data"])
            else:
                assert got == value, (x, stored["data"])
        occurred = instant(stored["occurred_at"])
        # receivedAt - (sentAt - timestamp), receivedAt while the proxy waited for the call that appended it
        exchange, sent_at = first_carrier[x.message_id]
        clock_error = sent_at - x.stamped
        assert exchange.forwarded_at - clock_error <= occurred <= exchange.answered_at - clock_error, (
            x,
            occurred,
        )
        landed.append((x, occurred))
    for shopper in SHOPPERS:
        refunded = {order_id for order_id, _ in shopper.refunds}
        for order in shopper.orders:
            stream = requests.get(
                f"{stack.base}/v1/audit/streams/order/{order.order_id}/events", headers=READER, timeout=10
            ).json()
            made = ["OrderPlaced", "OrderPaid"] + (["OrderRefunded"] if order.order_id in refunded else [])
            assert [e["type"] for e in stream["events"]] == made
    return landed


def check_figures(stack: Stack, landed: list[tuple[Expected, datetime]], head: int, days: list[date]) -> None:
    """Active users (all, by tracked event, by scene) and revenue per day, from what was sent and
    the day it landed on."""
    active: dict[date, set[str]] = defaultdict(set)
    video: dict[date, set[str]] = defaultdict(set)
    shopping: dict[date, set[str]] = defaultdict(set)
    money_in: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"paid": Decimal(0), "refunded": Decimal(0), "orders_paid": 0}
    )
    for x, occurred in landed:
        day = occurred.date()
        if x.type in ACTIVITY:
            active[day].add(x.user_id)
        if x.type == "EventTracked" and x.data["name"] == "Video Played":
            video[day].add(x.user_id)
        if x.type == "SceneVisited":
            shopping[day].add(x.user_id)
        if x.type == "OrderPaid":
            money_in[day]["paid"] += x.data["amount"]
            money_in[day]["orders_paid"] += 1
        if x.type == "OrderRefunded":
            money_in[day]["refunded"] += x.data["amount"]
    assert not any(LURKER[0] in users for users in active.values())
    span = {"from": days[0].isoformat(), "to": days[-1].isoformat(), "granularity": "day"}

    for filter_, users in ((None, active), ("event:Video Played", video), ("scene:shopping", shopping)):
        params = span if filter_ is None else {**span, "filter": filter_}
        got = read(stack, "/v1/activity/active-users", head, **params)
        wanted = [{"period": d.isoformat(), "users": len(users[d])} for d in days]
        assert got["series"] == wanted, filter_ or "every activity"

    def revenue_of(d: date) -> dict[str, Any]:
        if d not in money_in:
            return {"period": d.isoformat(), "currencies": {}, "active_users": len(active[d])}
        cell = money_in[d]
        net = cell["paid"] - cell["refunded"]
        figures = {
            "paid": money(cell["paid"]),
            "refunded": money(cell["refunded"]),
            "net": money(net),
            "orders_paid": cell["orders_paid"],
            "arpu": money(net / len(active[d])),
        }
        return {"period": d.isoformat(), "currencies": {CURRENCY: figures}, "active_users": len(active[d])}

    got = read(stack, "/v1/value/revenue", head, **span)
    assert got["series"] == [revenue_of(d) for d in days]


def check_users(stack: Stack, landed: list[tuple[Expected, datetime]], head: int) -> None:
    """Each user's orders and net revenue counted once, the times from the events that made them."""
    for user in [s.user_id for s in SHOPPERS] + [VISITOR, LURKER[0]]:
        mine = [(x, occurred) for x, occurred in landed if x.user_id == user]

        def times(*types: str, mine: list[tuple[Expected, datetime]] = mine) -> list[datetime]:
            return [occurred for x, occurred in mine if x.type in types]

        def amounts(type_: str, mine: list[tuple[Expected, datetime]] = mine) -> Decimal:
            return sum((x.data["amount"] for x, _ in mine if x.type == type_), Decimal(0))

        state = read(stack, f"/v1/users/{user}", head)
        wanted = {
            "orders": len(times("OrderPlaced")),
            "net_revenue": (
                {CURRENCY: money(amounts("OrderPaid") - amounts("OrderRefunded"))}
                if times("OrderPaid", "OrderRefunded")
                else {}
            ),
            "lifecycle": "new",
            "first_seen_at": min(occurred for _, occurred in mine),
            "signup_at": min(times("UserRegistered"), default=None),
            "first_order_at": min(times("OrderPlaced"), default=None),
            "last_order_at": max(times("OrderPlaced"), default=None),
            "last_active_at": max(times(*ACTIVITY), default=None),
        }
        shown = {k: instant(v) if k.endswith("_at") and v else state[k] for k, v in state.items()}
        assert {k: shown[k] for k in wanted} == wanted, user


def messages_sent() -> int:
    """identify, sign-up, product view, each order, the video, page, screen, each refund, check-in;
    and the visitor's page and the lurker's identify."""
    per_shopper = [6 + len(s.orders) + len(s.refunds) + s.watches_video for s in SHOPPERS]
    return sum(per_shopper) + 2


class SkewedClock(datetime):
    """`datetime` for a library's modules, on a sender whose clock runs `skew` ahead."""

    skew = timedelta(0)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> SkewedClock:
        return cls.fromtimestamp(time.time() + cls.skew.total_seconds(), tz)


CLOCKS = {
    "segment-analytics-python": ("segment.analytics.client", "segment.analytics.request"),
    "rudder-sdk-python": ("rudderstack.analytics.client", "rudderstack.analytics.request"),
}
"""The library modules that read the clock for `timestamp` and `sentAt`."""


@pytest.mark.parametrize(
    ("library", "skew"),
    [("segment-analytics-python", timedelta(hours=1)), ("rudder-sdk-python", timedelta(minutes=-90))],
    ids=["segment-analytics-python-clock-1h-fast", "rudder-sdk-python-clock-90min-slow"],
)
def test_a_library_on_the_embedded_server_counts_every_retried_batch_once(
    library: str, skew: timedelta, embedded: Stack, monkeypatch: pytest.MonkeyPatch
):
    """The proxy loses the answers to the first two requests: batch 1 is appended once, then
    acknowledged twice as duplicates. The sender's clock is off (an hour fast, 90 minutes slow):
    the events land at the real time all the same."""
    clock = type("Clock", (SkewedClock,), {"skew": skew})
    for module in CLOCKS[library]:
        monkeypatch.setattr(f"{module}.datetime", clock)
    through_library(library, embedded, drop_first=2)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_a_library_on_the_full_stack(library: str, full_stack: Stack):
    """PostgreSQL, relay, Kafka, the Faust worker and Elasticsearch: the same exact figures, the
    first answer lost."""
    through_library(library, full_stack, drop_first=1)
