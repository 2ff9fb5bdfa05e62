"""Small threaded HTTP proxies, in the calling process, in front of the real mesh-sandbox.

Both pass every request on to the sandbox over a fresh upstream connection; they differ in what
they do on the way:

- ``RecordingProxy(sandbox.url)`` (the meshcore tests) streams each request on and records what
  went over the wire: method, path, the headers that matter for sizes, and the body's length *as
  sent* (after gzip, with any chunked transfer framing removed). That is what MESH's per-request
  size limit counts, measured outside meshcore.
- ``LatencyProxy(sandbox.url, delay_ms=80)`` (the throughput benchmark and the concurrency tests)
  holds each request for ``delay_ms`` before passing it on. The sandbox answers on loopback in a
  millisecond or two; live MESH is tens to hundreds of milliseconds away. Work done one request at
  a time slows down by the delay per request, work done several at once does not. Keep-alive is
  honoured, so a client that reuses its connection pays the delay per request, not per connection,
  as with a real round trip. A request body is read whole before it is passed on (the benchmark's
  messages are small); a response is streamed back in pieces.
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
_PIECE = 256 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client stopped mid-request
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to its proxy's ``forward``; reads bodies and writes answers for it."""

    protocol_version = "HTTP/1.1"
    # An answer goes out in several writes (headers, pieces, the last chunk): with Nagle's algorithm
    # on, each write after the first waits for the client's delayed ACK, up to 40 ms a request on
    # loopback, which the throughput benchmark counted as MESH's time.
    disable_nagle_algorithm = True
    proxy: _ForwardingProxy

    def do_GET(self) -> None:
        self.proxy.forward(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, *args: object) -> None:
        pass  # quiet: the test output is the assertion

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def body_pieces(self) -> Iterator[bytes]:
        """The request body as it arrives, any chunked framing removed."""
        if self.chunked:
            return self._chunked_body()
        return self._sized_body(int(self.headers.get("Content-Length") or 0))

    def _sized_body(self, length: int) -> Iterator[bytes]:
        while length > 0:
            piece = self.rfile.read(min(_PIECE, length))
            if not piece:
                raise ConnectionError("the client stopped sending")
            length -= len(piece)
            yield piece

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield from self._sized_body(size)
            self.rfile.readline()  # the CRLF after each chunk

    def put_upstream_request(self, upstream: http.client.HTTPConnection, framing: str) -> None:
        """The request line and the end-to-end headers, then ``framing`` (a Content-Length value
        or "chunked"); the caller sends the body."""
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                upstream.putheader(name, value)
        if framing == "chunked":
            upstream.putheader("Transfer-Encoding", "chunked")
        else:
            upstream.putheader("Content-Length", framing)
        upstream.endheaders()

    def _answer_headers(self, response: http.client.HTTPResponse) -> None:
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)

    def answer_whole(self, response: http.client.HTTPResponse) -> None:
        body = response.read()
        self._answer_headers(response)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_streamed(self, response: http.client.HTTPResponse) -> None:
        self._answer_headers(response)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while piece := response.read(_PIECE):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def client_gone(self) -> bool:
        try:
            peeked = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return peeked == b""


class _ForwardingProxy:
    """A proxy server on a free loopback port, served from a daemon thread while in ``with``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http":
            raise ValueError("the proxies forward plain HTTP (the sandbox on loopback)")
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def forward(self, handler: _Handler) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body_bytes: int
    headers: dict[str, str]  # lower-case names

    @property
    def chunk_range(self) -> str | None:
        return self.headers.get("mex-chunk-range")


class RecordingProxy(_ForwardingProxy):
    """``with RecordingProxy(sandbox.url) as proxy:`` ... ``proxy.requests``."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.requests: list[Recorded] = []

    def posts(self) -> list[Recorded]:
        return [request for request in self.requests if request.method == "POST"]

    def forward(self, handler: _Handler) -> None:
        chunked = handler.chunked
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            framing = "chunked" if chunked else str(int(handler.headers.get("Content-Length") or 0))
            handler.put_upstream_request(upstream, framing)
            sent = 0
            for piece in handler.body_pieces():
                sent += len(piece)
                upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                upstream.send(b"0\r\n\r\n")
            headers = {name.lower(): value for name, value in handler.headers.items()}
            with self._lock:
                self.requests.append(Recorded(handler.command, handler.path, sent, headers))
            handler.answer_whole(upstream.getresponse())
        finally:
            upstream.close()


class LatencyProxy(_ForwardingProxy):
    """``with LatencyProxy(upstream_url, delay_ms=20) as proxy:`` ... ``proxy.url``."""

    def __init__(self, upstream: str, delay_ms: float) -> None:
        super().__init__(upstream)
        self.delay = max(0.0, delay_ms) / 1000
        self.requests = 0
        self.in_flight = self.peak_in_flight = 0  # requests being answered at once, now and at most
        self.held = 0  # requests being held for their delay, not yet passed on

    def forward(self, handler: _Handler) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            self._delayed_forward(handler)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _delayed_forward(self, handler: _Handler) -> None:
        started = time.monotonic()
        # Read the request body first, then wait out the rest of the delay: the round trip is paid
        # once per request, whatever the body's size.
        body = b"".join(handler.body_pieces())
        remaining = self.delay - (time.monotonic() - started)
        with self._lock:
            self.held += 1
        try:
            if remaining > 0:
                time.sleep(remaining)
        finally:
            with self._lock:
                self.held -= 1
        if handler.client_gone():
            return  # the client died while its request was held: it never left the host
        upstream = http.client.HTTPConnection(*self.upstream, timeout=300)
        try:
            handler.put_upstream_request(upstream, str(len(body)))
            upstream.send(body)
            handler.answer_streamed(upstream.getresponse())
        finally:
            upstream.close()
