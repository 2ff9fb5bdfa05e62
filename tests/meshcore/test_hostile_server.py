"""meshcore against a hostile (or badly broken) MESH server.

A small threaded HTTP server in the test process answers each request with one bad shape: an
endless JSON or error body, an endless download, a gzip bomb, a billion chunks, a chunk for
another message, a body trickled byte by byte, headers then silence. Every case must end in a
MeshError subclass, within the deadline, with bounded memory, and nothing past a limit written.
"""

from __future__ import annotations

import gzip
import io
import ssl
import threading
import time
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshcore import (
    DownloadLimits,
    MeshAuthenticationError,
    MeshClient,
    MeshDeadlineExceeded,
    MeshError,
    MeshPayloadTooLarge,
    MeshProtocolError,
    MeshTransientError,
)
from tests.meshcore.pki import issue, make_ca
from tests.sandbox import PASSWORD, SHARED_KEY

MiB = 1024 * 1024
DEADLINE = 1.5
LIMITS = DownloadLimits(
    max_message_bytes=8 * MiB, max_chunk_bytes=4 * MiB, max_expansion_ratio=50, max_chunks=100
)
# Generous: the client holds a few 256 KiB blocks at a time; these shapes would take GiBs.
MEMORY_BOUND = 48 * MiB
BLOCK = b"x" * 65536


def _bomb(decoded: int) -> bytes:
    """gzip of ``decoded`` zero bytes (about 1,000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    parts = [compressor.compress(zeros) for _ in range(decoded // MiB)]
    return b"".join([*parts, compressor.flush()])


BOMB = _bomb(256 * MiB)  # ~250 KiB on the wire, 256 MiB decoded


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        try:
            getattr(self, f"case_{self.server.case}")()  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client hung up: what it should do

    def _start(self, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _endless(self, piece: bytes = BLOCK) -> None:
        while True:
            self.wfile.write(piece)

    def _drip(self, piece: bytes = b" ") -> None:
        while True:
            self.wfile.write(piece)
            self.wfile.flush()
            time.sleep(0.05)

    def _download_headers(self, chunk_range: str = "1:1", message_id: str = "M1") -> dict:
        return {
            "Content_Type": "application/octet-stream",
            "mex_MessageID": message_id,
            "mex_MessageType": "DATA",
            "mex_Chunk_Range": chunk_range,
        }

    # -- the shapes ------------------------------------------------------------------------

    def case_endless_json(self) -> None:
        self._start(Content_Type="application/json", Connection="close")
        self.wfile.write(b'{"messages": ["')
        self._endless()

    def case_json_bomb(self) -> None:
        self._start(
            Content_Type="application/json", Content_Encoding="gzip", Content_Length=str(len(BOMB))
        )
        self.wfile.write(BOMB)

    def case_huge_error_body(self) -> None:
        self._start(403, Content_Type="text/html", Connection="close")
        self._endless(b"<p>denied</p>" * 1000)

    def case_error_bomb(self) -> None:
        self._start(
            503,
            Content_Type="application/json",
            Content_Encoding="gzip",
            Content_Length=str(len(BOMB)),
        )
        self.wfile.write(BOMB)

    def case_slow_json(self) -> None:
        self._start(Content_Type="application/json", Connection="close")
        self.wfile.write(b'{"messages": [')
        self._drip()

    def case_silent_json(self) -> None:
        self._start(Content_Type="application/json", Content_Length="100")
        self.wfile.flush()
        time.sleep(30)

    def case_endless_download(self) -> None:
        self._start(Connection="close", **self._download_headers())
        self._endless()

    def case_download_bomb(self) -> None:
        self._start(
            Content_Encoding="gzip", Content_Length=str(len(BOMB)), **self._download_headers()
        )
        self.wfile.write(BOMB)

    def case_billion_chunks(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self._start(206, Content_Length="5", **self._download_headers("1:1000000000"))
        self.wfile.write(b"hello")

    def case_other_message(self) -> None:
        self._start(Content_Length="5", **self._download_headers(message_id="M2"))
        self.wfile.write(b"hello")

    def case_wrong_chunk(self) -> None:
        number = "1" if self.path.endswith("/M1") else "5"
        self._start(206, Content_Length="5", **self._download_headers(f"{number}:2"))
        self.wfile.write(b"hello")

    def case_slow_download(self) -> None:
        self._start(Connection="close", **self._download_headers())
        self._drip(b"x")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same shapes over HTTPS, trusted through a CA given to the client as PEM bytes."""
    ca = make_ca("Hostile Test CA")
    cert_path, key_path = issue(ca, "localhost", dns=("localhost",), ips=("127.0.0.1",)).write(
        tmp_path_factory.mktemp("hostile-tls"), "server"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    httpd.scheme, httpd.verify = "https", ca.cert_pem  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _client(server) -> MeshClient:
    host, port = server.server_address
    scheme = getattr(server, "scheme", "http")
    return MeshClient(
        f"{scheme}://{'localhost' if scheme == 'https' else host}:{port}",
        "X26ABC1",
        PASSWORD,
        SHARED_KEY,
        max_retries=0,
        timeout=(5, 20),
        request_deadline=DEADLINE,
        min_transfer_rate=4 * MiB,
        download_limits=LIMITS,
        max_response_body=1 * MiB,
        verify=getattr(server, "verify", True),
    )


class Sink(io.RawIOBase):
    """Counts what the client writes, keeps nothing."""

    def __init__(self) -> None:
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.written += len(data)
        return len(data)


def _run(server, case: str, call):
    """Run ``call(client)`` against the shape ``case``: (the error, seconds, peak bytes)."""
    server.case = case
    server.requests.clear()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with _client(server) as client:
            with pytest.raises(MeshError) as raised:
                call(client)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{case}: peak {peak:,} bytes"
    return raised.value, elapsed


def _inbox(client: MeshClient) -> list[str]:
    return list(client.iter_inbox())


@pytest.mark.parametrize(
    ("case", "expected", "limit_name"),
    [
        ("endless_json", MeshPayloadTooLarge, "max_response_body"),
        ("json_bomb", MeshPayloadTooLarge, "max_response_body"),
        ("huge_error_body", MeshAuthenticationError, None),
        ("error_bomb", MeshTransientError, None),
        ("slow_json", MeshDeadlineExceeded, None),
        ("silent_json", MeshDeadlineExceeded, None),
    ],
)
def test_it_bounds_every_answer_that_is_not_a_download(server, case, expected, limit_name):
    error, elapsed = _run(server, case, _inbox)
    assert type(error) is expected, repr(error)
    assert elapsed < DEADLINE + 3
    if limit_name:
        assert error.limit_name == limit_name
        assert error.limit == MiB
    if expected is MeshDeadlineExceeded:
        assert not error.retryable and error.is_transient
        assert elapsed >= DEADLINE


@pytest.mark.parametrize(
    ("case", "limit_name", "limit"),
    [
        ("endless_download", "max_chunk_bytes", 4 * MiB),
        ("download_bomb", "max_expansion_ratio", 50),
        ("billion_chunks", "max_chunks", 100),
    ],
)
def test_it_refuses_a_message_past_a_limit_before_writing_past_it(server, case, limit_name, limit):
    sink = Sink()
    limits = LIMITS
    if case == "download_bomb":  # size limits far away: the ratio alone stops it
        limits = DownloadLimits(
            max_message_bytes=2 * 1024 * MiB, max_chunk_bytes=2 * 1024 * MiB, max_expansion_ratio=50
        )
    error, elapsed = _run(server, case, lambda client: client.download("M1", sink, limits=limits))
    assert isinstance(error, MeshPayloadTooLarge), repr(error)
    assert (error.limit_name, error.limit, error.message_id) == (limit_name, limit, "M1")
    # Nothing past the limit was written (the ratio is checked past its 16 MiB grace).
    assert sink.written <= (17 * MiB if case == "download_bomb" else LIMITS.max_chunk_bytes)
    assert elapsed < DEADLINE + 3
    if case == "billion_chunks":
        assert server.requests == ["/messageexchange/X26ABC1/inbox/M1"]  # no chunk 2 asked for


def test_it_applies_a_smaller_per_message_limit_given_to_download(server):
    sink = Sink()
    limits = DownloadLimits(max_message_bytes=MiB)
    error, _ = _run(server, "endless_download", lambda c: c.download("M1", sink, limits=limits))
    assert (error.limit_name, error.limit) == ("max_message_bytes", MiB)
    assert sink.written <= MiB


@pytest.mark.parametrize("case", ["other_message", "wrong_chunk"])
def test_it_refuses_an_answer_for_another_message_or_chunk(server, case):
    error, _ = _run(server, case, lambda client: client.download("M1", Sink()))
    assert type(error) is MeshProtocolError, repr(error)
    assert "refused" in str(error)


def test_it_stops_a_download_trickled_slower_than_the_minimum_rate(server):
    sink = Sink()
    error, elapsed = _run(server, "slow_download", lambda client: client.download("M1", sink))
    assert isinstance(error, MeshDeadlineExceeded), repr(error)
    assert DEADLINE <= elapsed < DEADLINE + 3


def test_it_still_reads_an_honest_gzip_message_that_compresses_well(server):
    """The ratio is checked only past a grace size: a small, very repetitive file is fine."""
    data = b"0," * (4 * MiB)
    body = gzip.compress(data)
    assert len(data) / len(body) > LIMITS.max_expansion_ratio

    def honest(handler: Handler) -> None:
        handler._start(
            Content_Encoding="gzip", Content_Length=str(len(body)), **handler._download_headers()
        )
        handler.wfile.write(body)

    Handler.case_honest = honest  # type: ignore[attr-defined]
    server.case = "honest"
    sink = Sink()
    with _client(server) as client:
        limits = DownloadLimits(max_chunk_bytes=16 * MiB, max_expansion_ratio=50)
        info = client.download("M1", sink, limits=limits)
    assert info.size == sink.written == len(data)


def test_it_validates_the_limits():
    with pytest.raises(MeshError):
        DownloadLimits(max_message_bytes=0)
    with pytest.raises(MeshError):
        DownloadLimits(max_expansion_ratio=0.5)
    with pytest.raises(MeshError):
        MeshClient("http://localhost:1", "X26ABC1", PASSWORD, SHARED_KEY, request_deadline=-1)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("slow_json", MeshDeadlineExceeded),
        ("silent_json", MeshDeadlineExceeded),
        ("endless_json", MeshPayloadTooLarge),
        ("slow_download", MeshDeadlineExceeded),
        ("endless_download", MeshPayloadTooLarge),
    ],
)
def test_it_bounds_the_same_shapes_over_tls(tls_server, case, expected):
    def call(client):
        return _inbox(client) if case.endswith("json") else client.download("M1", Sink())

    error, elapsed = _run(tls_server, case, call)
    assert type(error) is expected, repr(error)
    assert elapsed < DEADLINE + 3
