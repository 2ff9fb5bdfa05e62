"""``python -m bench hostile``: what a hostile MESH server costs meshcore, and what the limits cost.

Issue 11 measured, before the limits: a 2 MB gzip message became 2 GiB on disk in 7 s, and an
endless JSON body grew the worker to 7 GiB. Each shape here is served by a small HTTP server in
this process to a MeshClient with the default limits (the deadline lowered to 5 s), each case in a
fresh child process so its peak RSS is its own. Reported: time to the MeshError, bytes written,
peak RSS growth. Then the price of the checks on an honest download: the same gzip body decoded
with and without the size guard, in memory (no network, no disk), best of 3.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "hostile"
DESCRIPTION = "meshcore against a hostile server: time, disk and memory to refuse each bad shape"
MiB = 1024 * 1024
PASSWORD, SHARED_KEY = "password", "TestKey"


def _gzip_zeros(decoded: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(bytes(MiB)) for _ in range(decoded // MiB)]
    return b"".join([*parts, compressor.flush()])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bomb = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        case = self.server.case  # type: ignore[attr-defined]
        try:
            if case == "gzip_bomb":
                self.send_response(200)
                for name, value in (
                    ("Content-Encoding", "gzip"),
                    ("mex-MessageID", "M1"),
                    ("Content-Length", str(len(self.bomb))),
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(self.bomb)
                return
            self.send_response(200)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("mex-MessageID", "M1")
            self.end_headers()
            if case == "endless_json":
                self.wfile.write(b'{"messages": ["')
            block = b"x" * 65536
            if case == "slow_drip":
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            while True:
                self.wfile.write(block)
        except OSError:
            pass


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.written += len(data)
        return len(data)


def _case(case: str, queue) -> None:
    """In a child process: one shape against a fresh client; reports to ``queue``."""
    from meshcore import MeshClient, MeshError

    _Handler.bomb = _gzip_zeros(2048 * MiB) if case == "gzip_bomb" else b""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.handle_error = lambda request, address: None  # the client hanging up is the point
    server.daemon_threads = True
    server.case = case  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    client = MeshClient(
        f"http://{host}:{port}",
        "X26ABC1",
        PASSWORD,
        SHARED_KEY,
        max_retries=0,
        request_deadline=5.0,
    )
    sink = _Sink()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        if case == "endless_json" or case == "slow_drip":
            list(client.iter_inbox())
        else:
            client.download("M1", sink)
        outcome = "no error (!)"
    except MeshError as error:
        outcome = f"{type(error).__name__}: {str(error)[:90]}"
    elapsed = time.monotonic() - started
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    queue.put(
        {
            "case": case,
            "sent": len(_Handler.bomb),
            "seconds": elapsed,
            "written": sink.written,
            "rss": growth,
            "outcome": outcome,
        }
    )
    client.close()
    server.shutdown()


def _guard_cost(decoded: int = 512 * MiB) -> tuple[float, float]:
    """MiB/s decoding an honest, well-compressing gzip body without and with the size guard."""
    from meshcore.decoding import copy_response
    from meshcore.limits import DownloadLimits, SizeGuard

    body = _gzip_zeros(decoded // 4) * 4  # four members; ratio ~1,000 per member

    class Raw(io.BytesIO):
        def read(self, size=-1, decode_content=False):  # urllib3's signature
            return super().read(size)

    class Response:
        headers = {"Content-Encoding": "gzip"}

        def __init__(self) -> None:
            self.raw = Raw(body)

    limits = DownloadLimits(max_expansion_ratio=10_000)
    rates = []
    for guarded in (False, True):
        best = float("inf")
        for _ in range(3):
            guard = SizeGuard(limits, "M1") if guarded else None
            started = time.perf_counter()
            copy_response(Response(), _Sink(), guard)
            best = min(best, time.perf_counter() - started)
        rates.append(decoded / MiB / best)
    return rates[0], rates[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cases",
        default="gzip_bomb,endless_download,endless_json,slow_drip",
        help="comma-separated shapes (default: all)",
    )


def run(args: argparse.Namespace) -> int:
    context = multiprocessing.get_context("spawn")
    print(f"{'shape':18} {'sent':>10} {'seconds':>8} {'written':>14} {'RSS growth':>12}  outcome")
    failed = False
    for case in args.cases.split(","):
        queue = context.Queue()
        child = context.Process(target=_case, args=(case, queue))
        child.start()
        row = queue.get(timeout=300)
        child.join(timeout=30)
        failed |= row["outcome"].startswith("no error")
        print(
            f"{row['case']:18} {row['sent']:>10,} {row['seconds']:>8.2f} {row['written']:>14,} "
            f"{row['rss'] / MiB:>10.1f} MiB  {row['outcome']}",
            flush=True,
        )
    plain, guarded = _guard_cost()
    print(
        f"\nHonest gzip download, decode only: {plain:,.0f} MiB/s without the guard, "
        f"{guarded:,.0f} MiB/s with it ({(1 - guarded / plain) * 100:+.1f}% cost)"
    )
    return 1 if failed else 0
