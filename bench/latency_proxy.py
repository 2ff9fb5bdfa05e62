"""A small threaded HTTP proxy that adds a fixed delay to every request, in front of mesh-sandbox.

The sandbox answers on loopback in a millisecond or two; live MESH is tens to hundreds of
milliseconds away. ``LatencyProxy(sandbox.url, delay_ms=80)`` sits between the workers and the
sandbox and holds each request for ``delay_ms`` before passing it on, so a benchmark measures what
a round trip to MESH costs: work done one request at a time slows down by the delay per request,
work done several at once does not.

One thread per client connection (keep-alive is honoured, so a client that reuses its connection
pays the delay per request, not per connection, as with a real round trip); each request opens its
own upstream connection. A request body is read whole before it is passed on (the benchmark's
messages are small); a response is streamed back in pieces.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
_PIECE = 256 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a worker stopped mid-request
            super().handle_error(request, client_address)


class LatencyProxy:
    """``with LatencyProxy(upstream_url, delay_ms=20) as proxy:`` ... ``proxy.url``."""

    def __init__(self, upstream: str, delay_ms: float) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http":
            raise ValueError("LatencyProxy forwards plain HTTP (the sandbox on loopback)")
        self.upstream = (parts.hostname, parts.port)
        self.delay = max(0.0, delay_ms) / 1000
        self.requests = 0
        self.in_flight = self.peak_in_flight = 0  # requests being answered at once, now and at most
        self.held = 0  # requests being held for their delay, not yet passed on
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _started(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _ended(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                proxy._started()
                try:
                    self._delayed_forward()
                finally:
                    proxy._ended()

            def _delayed_forward(self) -> None:
                started = time.monotonic()
                chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                length = int(self.headers.get("Content-Length") or 0)
                # Read the request body first, then wait out the rest of the delay: the round trip
                # is paid once per request, whatever the body's size.
                body = b"".join(self._chunked_body() if chunked else self._sized_body(length))
                remaining = proxy.delay - (time.monotonic() - started)
                with proxy._lock:
                    proxy.held += 1
                try:
                    if remaining > 0:
                        time.sleep(remaining)
                finally:
                    with proxy._lock:
                        proxy.held -= 1
                if self._client_gone():
                    return  # the client died while its request was held: it never left the host
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=300)
                try:
                    upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.putheader("Content-Length", str(len(body)))
                    upstream.endheaders(body)
                    self._answer(upstream.getresponse())
                finally:
                    upstream.close()

            def _client_gone(self) -> bool:
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return False
                except OSError:
                    return True
                return peeked == b""

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

            def _answer(self, response: http.client.HTTPResponse) -> None:
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while piece := response.read(_PIECE):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

        return Handler
