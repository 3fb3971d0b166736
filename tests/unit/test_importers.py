"""The importers' mappings on small inline files: events, deterministic ids, the line of a bad row;
batches written all or none; HTTP retries."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from domain.envelope import parse_envelope
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.importers import BadLine, ImportFailed, opener
from infra.importers.cdnow import Cdnow
from infra.importers.loading import HttpSink, Interrupted, StoreSink, load
from infra.importers.ndjson import Ndjson
from infra.importers.online_retail import OnlineRetail
from infra.importers.source import Batch, checked, envelope_json

ONLINE_RETAIL_NAMESPACE = uuid.UUID("2b0e4c52-9f0a-4d7c-8f67-54a0f4b7c1d3")
CDNOW_NAMESPACE = uuid.UUID("7c1f6a0e-3d2b-4e8f-9a51-6b0d2c8e4f17")

RETAIL = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,"WHITE HANGING HEART T-LIGHT HOLDER, LARGE",6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047,Unspecified
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as out:
            out.write(text)
    else:
        path.write_text(text)
    return path


def all_events(source) -> list:
    return [event for batch in source.batches(1000) for event in batch.events]


def test_online_retail_maps_each_customer_invoice_to_a_session_views_an_order_and_its_payment(tmp_path):
    source = OnlineRetail(write(tmp_path, "retail.csv.gz", RETAIL))
    events = all_events(source)
    assert source.total == len(events) == 5 + 4  # two invoices: 2 lines + 3, 1 line + 3
    raw = [e.raw for e in events]
    assert [(e["type"], e["user_id"], e["occurred_at"]) for e in raw[:5]] == [
        ("SessionStarted", "17850", "2010-12-01T08:16:00Z"),
        ("SceneVisited", "17850", "2010-12-01T08:21:00Z"),
        ("SceneVisited", "17850", "2010-12-01T08:21:00Z"),
        ("OrderPlaced", "17850", "2010-12-01T08:26:00Z"),
        ("OrderPaid", "17850", "2010-12-01T08:27:00Z"),
    ]
    assert [e["event_id"] for e in raw[:5]] == [
        str(uuid.uuid5(ONLINE_RETAIL_NAMESPACE, f"536365:{n}")) for n in range(5)
    ]
    assert raw[3]["data"] == {
        "order_id": "536365",
        "amount": "35.64",  # 6 x 2.55 + 6 x 3.39
        "currency": "GBP",
        "items": [
            {"sku": "85123A", "quantity": 6, "unit_price": "2.55"},
            {"sku": "71053", "quantity": 6, "unit_price": "3.39"},
        ],
    }
    assert raw[1]["data"] == {"scene": "shopping", "page": "85123A", "action": "view"}
    assert raw[0]["context"] == {"channel": "web", "country": "GB"}
    assert raw[5]["context"] == {"channel": "web"}  # "Unspecified" is no country
    assert [e.line for e in events] == [2, 2, 3, 2, 2, 6, 6, 6, 6]
    assert [e.raw for e in all_events(OnlineRetail(tmp_path / "retail.csv.gz"))] == raw  # same ids again


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("536365,85123A,X,six,2010-12-01 08:26:00,2.55,17850,United Kingdom", "Quantity"),
        ("536365,85123A,X,6,2010-12-01 08:26:00,cheap,17850,United Kingdom", "UnitPrice"),
        ("536365,85123A,X,6,01/12/2010 08:26,2.55,17850,United Kingdom", "InvoiceDate"),
    ],
)
def test_online_retail_names_the_line_and_column_of_a_bad_row(tmp_path, row, field):
    text = RETAIL.splitlines()[0] + "\n" + RETAIL.splitlines()[1] + "\n" + row + "\n"
    with pytest.raises(BadLine) as bad:
        OnlineRetail(write(tmp_path, "retail.csv", text))
    assert (bad.value.line, bad.value.field) == (3, field)
    assert str(bad.value).startswith(f"line 3: {field}: ")


def test_a_bad_row_stops_the_import_before_anything_is_written(tmp_path):
    text = RETAIL + "536368,22960,JAM MAKING SET,3,2010-12-01 08:34:00,4.25,,United Kingdom\n"
    text += "536369,21756,BATH BUILDING BLOCK WORD,three,2010-12-01 08:35:00,5.95,13047,United Kingdom\n"

    class Nothing:
        def write(self, batch):
            raise AssertionError("nothing may be written")

    with pytest.raises(Interrupted, match=r"^line 8: Quantity: 'three' is not an integer$") as stopped:
        load(opener("online-retail", write(tmp_path, "retail.csv", text)), Nothing(), 1000, None)
    assert (stopped.value.outcome.read, stopped.value.outcome.appended) == (0, 0)


def test_online_retail_refuses_another_file(tmp_path):
    with pytest.raises(BadLine, match="line 1: header: missing column"):
        OnlineRetail(write(tmp_path, "other.csv", "customer_id,date,number_of_cds,dollar_value\n"))


CDNOW = """customer_id,date,number_of_cds,dollar_value
00001,1997-01-01,1,11.77
00002,1997-01-12,1,12.00
00002,1997-01-12,5,77.00
00003,1997-01-02,2,20.76
00002,1997-03-30,2,0.00
"""


def test_cdnow_makes_one_paid_order_per_customer_and_day_in_date_order(tmp_path):
    source = Cdnow(write(tmp_path, "cdnow.csv", CDNOW))
    events = all_events(source)
    assert source.total == len(events) == 8
    raw = [e.raw for e in events]
    assert [(e["type"], e["data"]["order_id"], e["data"]["amount"]) for e in raw] == [
        ("OrderPlaced", "00001-1997-01-01", "11.77"),
        ("OrderPaid", "00001-1997-01-01", "11.77"),
        ("OrderPlaced", "00003-1997-01-02", "20.76"),
        ("OrderPaid", "00003-1997-01-02", "20.76"),
        ("OrderPlaced", "00002-1997-01-12", "89.00"),
        ("OrderPaid", "00002-1997-01-12", "89.00"),
        ("OrderPlaced", "00002-1997-03-30", "0.00"),
        ("OrderPaid", "00002-1997-03-30", "0.00"),
    ]
    assert raw[4] == {
        "event_id": str(uuid.uuid5(CDNOW_NAMESPACE, "00002-1997-01-12:placed")),
        "type": "OrderPlaced",
        "user_id": "00002",
        "occurred_at": "1997-01-12T12:00:00Z",
        "data": {"order_id": "00002-1997-01-12", "amount": "89.00", "currency": "USD"},
        "context": {"channel": "web"},
    }
    assert raw[5]["event_id"] == str(uuid.uuid5(CDNOW_NAMESPACE, "00002-1997-01-12:paid"))
    assert raw[5]["occurred_at"] == "1997-01-12T12:01:00Z"
    assert [e.line for e in events] == [2, 2, 5, 5, 3, 3, 6, 6]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("00004,1997-13-01,1,1.00", "date"),
        ("00004,1997-01-01,1,-1.00", "dollar_value"),
        (",1997-01-01,1,1", "customer_id"),
    ],
)
def test_cdnow_names_the_line_and_column_of_a_bad_row(tmp_path, row, field):
    with pytest.raises(BadLine) as bad:
        Cdnow(write(tmp_path, "cdnow.csv.gz", CDNOW + row + "\n"))
    assert (bad.value.line, bad.value.field) == (7, field)


def envelope(n: int, **changes) -> dict:
    event = {
        "event_id": str(uuid.UUID(int=n)),
        "type": "SessionStarted",
        "user_id": f"u{n}",
        "occurred_at": "2024-05-01T10:00:00Z",
        "data": {"platform": "web"},
    }
    return {**event, **changes}


def ndjson(tmp_path: Path, lines: list[object], name: str = "events.ndjson") -> Path:
    return write(tmp_path, name, "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")


def test_ndjson_envelopes_keep_their_lines_and_blank_lines_are_skipped(tmp_path):
    source = Ndjson(ndjson(tmp_path, [envelope(1), "", envelope(2), envelope(3)], "e.ndjson.gz"))
    assert source.total == 4
    batches = list(source.batches(2))
    assert [[e.line for e in b.events] for b in batches] == [[1], [3, 4]]  # two lines a batch
    assert [b.read for b in batches] == [2, 2]
    assert {b.idempotency for b in batches} == {"content"}
    assert [e.envelope.event_id for b in batches for e in b.events] == [
        str(uuid.UUID(int=n)) for n in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: the line: not valid JSON"),
        ("[1, 2]", "line 2: the line: expected a JSON object"),
        (json.dumps({"type": "OrderPlaced", "user_id": "u"}), "line 2: occurred_at: required"),
        (json.dumps(envelope(2, data={"platform": 7})), "line 2: data.platform: must be a string"),
    ],
)
def test_ndjson_names_the_bad_line_and_field(tmp_path, line, message):
    with pytest.raises(BadLine) as bad:
        list(Ndjson(ndjson(tmp_path, [envelope(1), line, envelope(3)])).batches(10))
    assert str(bad.value).startswith(message)


def segment(message_id: str, **fields) -> dict:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "u1",
        "timestamp": "2024-05-01T10:00:00Z",
        **fields,
    }


ORDER = {"event": "Order Completed", "properties": {"order_id": "o1", "total": 12.5, "currency": "EUR"}}


def test_ndjson_segment_messages_are_translated_with_their_lines_and_a_repeated_message_id_sent_once(
    tmp_path,
):
    lines = [
        segment("m1", **ORDER),
        {
            "type": "page",
            "name": "Home",
            "messageId": "m2",
            "anonymousId": "a1",
            "timestamp": "2024-05-01T10:01:00Z",
        },
        segment("m1", **ORDER, sentAt="2024-05-01T10:00:05Z"),  # Segment's retry of m1
        envelope(4),
    ]
    path = ndjson(tmp_path, lines)
    batches = list(Ndjson(path).batches(10))
    assert [(b.idempotency, [(e.line, e.envelope.type) for e in b.events], b.skipped) for b in batches] == [
        ("key", [(1, "OrderPlaced"), (1, "OrderPaid"), (2, "EventTracked")], 2),
        ("content", [(4, "SessionStarted")], 0),
    ]
    placed = batches[0].events[0].envelope
    assert (placed.user_id, placed.data["order_id"], placed.data["amount"], placed.data["currency"]) == (
        "u1",
        "o1",
        Decimal("12.5"),
        "EUR",
    )
    again = [e.envelope.event_id for b in Ndjson(path).batches(10) for e in b.events]
    assert again == [e.envelope.event_id for b in batches for e in b.events]  # derived from messageId
    assert parse_envelope(batches[0].events[0].as_json()) == placed  # as POST /v1/events takes it


def test_ndjson_names_the_line_and_field_of_a_bad_segment_message(tmp_path):
    path = ndjson(tmp_path, [segment("m1", **ORDER), segment("m2"), segment("m3", **ORDER)])
    with pytest.raises(BadLine, match=r"^line 2: event: required"):
        list(Ndjson(path).batches(10))


def test_segment_messages_are_recorded_with_message_id_semantics(tmp_path):
    first = ndjson(tmp_path, [segment("m1", **ORDER)], "first.ndjson")
    resent = ndjson(tmp_path, [segment("m1", **ORDER, timestamp="2024-05-01T10:00:09Z")], "resent.ndjson")
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}))
    try:
        once = load(opener("ndjson", first), StoreSink(system.event_store), 10, None)
        assert (once.read, once.appended, once.duplicates) == (1, 2, 0)
        again = load(opener("ndjson", resent), StoreSink(system.event_store), 10, None)
        assert (again.read, again.appended, again.duplicates) == (1, 0, 2)  # other content, same messageId
    finally:
        system.close()


def test_a_bad_line_leaves_the_batches_before_it_written_and_nothing_of_its_own(tmp_path):
    path = ndjson(tmp_path, [envelope(1), envelope(2), envelope(3), envelope(4, occurred_at="yesterday")])
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}))
    try:
        with pytest.raises(Interrupted) as stopped:
            load(opener("ndjson", path), StoreSink(system.event_store), 2, None)
        assert str(stopped.value).startswith("line 4: occurred_at: required RFC 3339 timestamp")
        assert (stopped.value.outcome.read, stopped.value.outcome.appended) == (2, 2)
        assert system.log_reader().head() == 2

        path.write_text("\n".join(json.dumps(envelope(n)) for n in (1, 2, 3, 4)))
        outcome = load(opener("ndjson", path), StoreSink(system.event_store), 2, None)
        assert (outcome.read, outcome.appended, outcome.duplicates) == (4, 2, 2)
        assert system.log_reader().head() == 4
    finally:
        system.close()


def test_a_conflict_names_the_line_of_the_event_that_broke_a_rule(tmp_path):
    paid = envelope(2, type="OrderPaid", user_id="u1", data={"order_id": "never-placed", "amount": "5"})
    path = ndjson(tmp_path, [envelope(1), paid])
    system = build_system(load_settings({"COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}))
    try:
        with pytest.raises(Interrupted, match=r"^line 2: order_not_placed: "):
            load(opener("ndjson", path), StoreSink(system.event_store), 10, None)
        assert system.log_reader().head() == 0
    finally:
        system.close()


def test_an_envelope_as_json_reads_back_as_the_same_envelope():
    raw = envelope(
        9,
        type="OrderPlaced",
        occurred_at="2024-05-01T12:00:00.250+02:00",
        data={
            "order_id": "o",
            "amount": 1e-2,
            "currency": "EUR",
            "items": [{"sku": "a", "quantity": 1, "unit_price": 1e1}],
        },
        context={"country": "DE"},
    )
    parsed = parse_envelope(raw)
    assert parse_envelope(envelope_json(parsed)) == parsed
    assert envelope_json(parsed)["data"]["items"][0]["unit_price"] == "10.0"


class Answers(BaseHTTPRequestHandler):
    """Answers POSTs with the queued (status, body) pairs, and keeps what was posted."""

    queue: list[tuple[int, dict]] = []
    posted: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posted.append({"auth": self.headers.get("Authorization"), "body": body})
        status, answer = type(self).queue.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Answers.queue, Answers.posted = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def two_events() -> Batch:
    return Batch([checked(1, envelope(1)), checked(2, envelope(2))], 2)


def test_http_retries_a_5xx_and_a_429_then_counts_what_the_server_answered(server):
    ok = {"appended": 1, "duplicates": 1, "first_position": 1, "last_position": 1}
    Answers.queue = [(503, {"error": {}}), (429, {"error": {}}), (201, ok)]
    sink = HttpSink(server, "k1", pause_s=0.01)
    assert sink.write(two_events()) == (1, 1)
    assert len(Answers.posted) == 3 and Answers.posted[0] == Answers.posted[2]
    assert Answers.posted[0]["auth"] == "Bearer k1"
    assert [e["event_id"] for e in Answers.posted[0]["body"]["events"]] == [
        str(uuid.UUID(int=n)) for n in (1, 2)
    ]


def test_http_stops_on_a_4xx_showing_the_body_and_the_lines_it_names(server):
    error = {
        "error": {
            "code": "validation_failed",
            "message": "bad",
            "details": [{"index": 1, "field": "data.x", "message": "nope"}],
        }
    }
    Answers.queue = [(422, error)]
    with pytest.raises(ImportFailed) as stopped:
        HttpSink(server, None, pause_s=0.01).write(two_events())
    assert "line 2: data.x: nope" in str(stopped.value)
    assert f"POST {server}/v1/events answered 422: " in str(stopped.value) and "validation_failed" in str(
        stopped.value
    )
    assert Answers.posted[0]["auth"] is None


def test_http_stops_at_once_on_a_malformed_url():
    with pytest.raises(ImportFailed, match=r"^POST localhost:8000/v1/events: "):
        HttpSink("localhost:8000", None, pause_s=0.01).write(two_events())


def test_http_gives_up_after_its_retries_on_a_status_that_stays_bad(server):
    Answers.queue = [(503, {"error": {}})] * 3
    with pytest.raises(ImportFailed, match=r"failed 3 times; the last: HTTP 503"):
        HttpSink(server, None, retries=2, pause_s=0.01).write(two_events())
    assert len(Answers.posted) == 3


def test_http_gives_up_after_its_retries_when_nothing_answers():
    sink = HttpSink("http://127.0.0.1:9", None, retries=2, pause_s=0.01)
    with pytest.raises(ImportFailed, match=r"failed 3 times; the last: .*Connection refused"):
        sink.write(two_events())
