"""Bounds on what a server may make the client read: received message sizes, response bodies and
time. Anything from MESH is untrusted; these turn a hostile or broken answer into a MeshError.

``DownloadLimits`` bounds a received message while it streams, before anything past a limit is
written: its decoded size in total and per chunk, the ratio of decoded to received bytes (a
"gzip bomb" of 2 MB that becomes 2 GiB), and the number of chunks the server claims.

``Deadline`` bounds the time one request may take, body included: ``seconds`` for everything,
plus, for a long download, one second per ``min_rate`` bytes received, so a big message over a
good link finishes while a body trickled byte by byte is cut off. A watchdog thread closes the
socket when the time is up, which also unblocks a read waiting on a silent server.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import MeshDeadlineExceeded, MeshPayloadTooLarge, MeshValidationError

GiB = 1024**3
MiB = 1024**2
# Below this many decoded bytes the expansion ratio is not checked: a small, very repetitive
# file (a CSV of blanks) legitimately compresses more than any sensible ratio.
RATIO_GRACE_BYTES = 16 * MiB
DEFAULT_MAX_RESPONSE_BODY = 16 * MiB
DEFAULT_REQUEST_DEADLINE = 120.0
DEFAULT_MIN_TRANSFER_RATE = 64 * 1024  # bytes/s a long download must average past the deadline


@dataclass(frozen=True)
class DownloadLimits:
    """What one received message may become. Every value must be positive."""

    max_message_bytes: int = 100 * GiB
    max_chunk_bytes: int = 1 * GiB
    max_expansion_ratio: float = 200.0
    max_chunks: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_chunk_bytes", "max_chunks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MeshValidationError(f"{name} must be a positive int, got {value!r}")
        ratio = self.max_expansion_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio >= 1:
            raise MeshValidationError(f"max_expansion_ratio must be a number >= 1, got {ratio!r}")

    def check_chunks(self, total_chunks: int, message_id: str) -> None:
        if total_chunks > self.max_chunks:
            raise MeshPayloadTooLarge(
                f"MESH says this message has {total_chunks:,} chunks, more than the "
                f"{self.max_chunks:,} allowed: not downloaded",
                limit_name="max_chunks",
                limit=self.max_chunks,
                message_id=message_id,
            )


class SizeGuard:
    """Counts one message's bytes as they stream and raises before a limit would be passed."""

    def __init__(self, limits: DownloadLimits, message_id: str) -> None:
        self.limits = limits
        self.message_id = message_id
        self.message_bytes = 0
        self.chunk_bytes = 0
        self.chunk_raw = 0

    def start_chunk(self) -> None:
        self.chunk_bytes = 0
        self.chunk_raw = 0

    def forget_chunk(self) -> None:
        """The chunk is fetched again from its start: what was counted of it is gone."""
        self.message_bytes -= self.chunk_bytes
        self.start_chunk()

    def received(self, raw: int) -> None:
        """``raw`` bytes arrived on the wire (before transport gzip is undone)."""
        self.chunk_raw += raw

    def admit(self, decoded: int) -> None:
        """``decoded`` bytes are about to be written: refuse them if they pass a limit."""
        limits = self.limits
        chunk = self.chunk_bytes + decoded
        message = self.message_bytes + decoded
        if chunk > limits.max_chunk_bytes:
            self._refuse("max_chunk_bytes", limits.max_chunk_bytes, "a chunk of it decodes to")
        if message > limits.max_message_bytes:
            self._refuse("max_message_bytes", limits.max_message_bytes, "it decodes to")
        if chunk > RATIO_GRACE_BYTES and chunk > limits.max_expansion_ratio * max(
            self.chunk_raw, 1
        ):
            raise MeshPayloadTooLarge(
                f"this message expands more than {limits.max_expansion_ratio:g} times when "
                f"decompressed ({self.chunk_raw:,} bytes received became more than {chunk:,}): "
                "refused as a likely decompression bomb, nothing kept",
                limit_name="max_expansion_ratio",
                limit=limits.max_expansion_ratio,
                message_id=self.message_id,
            )
        self.chunk_bytes = chunk
        self.message_bytes = message

    def _refuse(self, name: str, limit: int, what: str) -> None:
        raise MeshPayloadTooLarge(
            f"this message is too large: {what} more than {limit:,} bytes, the most this client "
            "accepts; refused, nothing kept",
            limit_name=name,
            limit=limit,
            message_id=self.message_id,
        )


class Deadline:
    """The time one response may take, with a watchdog that closes its socket when it is up."""

    def __init__(
        self, seconds: float | None, min_rate: float | None = None, started: float | None = None
    ) -> None:
        self.seconds = seconds
        self.min_rate = min_rate
        self.started = time.monotonic() if started is None else started
        self.received = 0
        self.expired = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: Any = None

    def allowed(self) -> float:
        extra = self.received / self.min_rate if self.min_rate else 0.0
        return (self.seconds or 0.0) + extra

    def remaining(self) -> float:
        return self.allowed() - (time.monotonic() - self.started)

    def watch(self, response: Any) -> Deadline:
        """Start the watchdog over this (streamed, unread) response's socket."""
        if self.seconds is None:
            return self
        self._sock = _socket_of(response)
        self._thread = threading.Thread(target=self._run, name="meshcore-deadline", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(max(0.01, min(self.remaining(), 1.0))):
            if self.remaining() <= 0:
                self.expired = True
                if self._sock is not None:
                    try:
                        self._sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    def add(self, raw: int) -> None:
        self.received += raw
        self.check()

    def check(self) -> None:
        if self.seconds is not None and (self.expired or self.remaining() <= 0):
            self.expired = True
            raise self.error()

    def error(self) -> MeshDeadlineExceeded:
        return MeshDeadlineExceeded(
            f"MESH took longer than the {self.allowed():.0f} s allowed for this answer "
            f"({self.received:,} bytes received): stopped"
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _socket_of(response: Any) -> Any:
    """The socket under a streamed requests/urllib3 response (None when it cannot be found)."""
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    return getattr(getattr(fp, "raw", None), "_sock", None)
