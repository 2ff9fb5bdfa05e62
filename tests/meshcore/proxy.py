"""A small recording HTTP proxy, in the test process, in front of the real mesh-sandbox.

A client pointed at ``RecordingProxy.url`` talks to the sandbox through it; the proxy streams each
request on and records what went over the wire: method, path, the headers that matter for sizes,
and the body's length *as sent* (after gzip, with any chunked transfer framing removed). That is
what MESH's per-request size limit counts, measured outside meshcore.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
_PIECE = 256 * 1024


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body_bytes: int
    headers: dict[str, str]  # lower-case names

    @property
    def chunk_range(self) -> str | None:
        return self.headers.get("mex-chunk-range")


class RecordingProxy:
    """``with RecordingProxy(sandbox.url) as proxy:`` ... ``proxy.requests``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def posts(self) -> list[Recorded]:
        return [request for request in self.requests if request.method == "POST"]

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args: object) -> None:
                pass  # quiet: the test output is the assertion

            def _forward(self) -> None:
                chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        upstream.putheader(name, value)
                length = int(self.headers.get("Content-Length") or 0)
                upstream.putheader(
                    "Transfer-Encoding" if chunked else "Content-Length",
                    "chunked" if chunked else str(length),
                )
                upstream.endheaders()
                sent = 0
                for piece in self._chunked_body() if chunked else self._sized_body(length):
                    sent += len(piece)
                    upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    upstream.send(b"0\r\n\r\n")
                headers = {name.lower(): value for name, value in self.headers.items()}
                proxy._record(Recorded(self.command, self.path, sent, headers))
                self._answer(upstream.getresponse())
                upstream.close()

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
                body = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
