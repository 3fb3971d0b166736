"""An HTTP/1.1 front for a server in tests that loses the first N responses.

Every request is forwarded whole (its body byte for byte, gzip or not) and the server's response read
whole; for the first `drop_first` requests the response is then thrown away and the client's
connection closed, so the server has done the work while the client sees a failure and retries.
Every exchange is kept, request and response, dropped or not. Standard library only; bodies must
come with a Content-Length (what `requests` sends), and keep-alive connections are served."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one connection, not the message (RFC 9110 §7.6.1)."""


@dataclass(frozen=True)
class Exchange:
    """One request as the client sent it and the server's answer to it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    response: bytes
    dropped: bool
    forwarded_at: datetime
    """The proxy's clock before it sent the request on: the server received it after this."""
    answered_at: datetime
    """The proxy's clock once the server's answer was read: the server received it before this."""

    def request_json(self) -> Any:
        """The request body parsed, unzipped first when it came gzip-encoded."""
        body = self.body
        if self.headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)

    def response_json(self) -> Any:
        return json.loads(self.response)


class FlakyProxy:
    """Listens on a free loopback port and forwards to `upstream` (`http://host:port`)."""

    def __init__(self, upstream: str, drop_first: int = 0):
        target = urlsplit(upstream)
        if target.scheme != "http" or target.hostname is None or target.port is None:
            raise ValueError(f"an http://host:port upstream, not {upstream!r}")
        self.upstream = (target.hostname, target.port)
        self.drop_first = drop_first
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._received = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-proxy", daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request forwarded so far, in the order the server answered them."""
        with self._lock:
            return list(self._exchanges)

    @property
    def forwarded(self) -> int:
        with self._lock:
            return len(self._exchanges)

    def _admit(self) -> bool:
        """Count a request in; whether its answer is to be dropped."""
        with self._lock:
            self._received += 1
            return self._received <= self.drop_first

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)


def _handler_for(proxy: FlakyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the exchanges are the record

        def finish(self) -> None:
            if self.upstream is not None:
                self.upstream.close()
            super().finish()

        def forward(self) -> None:
            if "transfer-encoding" in self.headers:
                self.send_error(411, "this proxy forwards Content-Length bodies only")
                self.close_connection = True
                return
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            dropped = proxy._admit()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            forwarded_at = datetime.now(UTC)
            self.upstream.request(self.command, self.path, body=body, headers=headers)
            answer = self.upstream.getresponse()
            content = answer.read()  # undoes chunking only; the bytes are the server's
            answered_at = datetime.now(UTC)
            exchange = Exchange(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in headers.items()},
                body=body,
                status=answer.status,
                response=content,
                dropped=dropped,
                forwarded_at=forwarded_at,
                answered_at=answered_at,
            )
            proxy._record(exchange)
            if dropped:
                self.close_connection = True  # closed with nothing written: the answer is lost
                return
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    for verb in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        setattr(Handler, f"do_{verb}", Handler.forward)  # how BaseHTTPRequestHandler dispatches
    return Handler
