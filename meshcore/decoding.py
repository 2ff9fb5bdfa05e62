"""Write a download response into a file, decoding it by *that response's* Content-Encoding.

Each chunk of a MESH message is its own HTTP response and may or may not be gzipped in transit,
so decoding is decided per response, from the raw (undecoded) stream. Doing it ourselves, rather
than letting the HTTP library decode silently, also lets us bound memory (decompression output
is capped per step, so a "gzip bomb" cannot balloon) and report a body that is not gzip clearly.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterator
from typing import IO, Any

from .errors import MeshPayloadTooLarge, MeshProtocolError
from .limits import Deadline, SizeGuard

READ_SIZE = 256 * 1024
_MAX_OUTPUT = 256 * 1024


class GzipDecoder:
    """Streaming gunzip that also accepts several concatenated gzip members."""

    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._feed(data)
        except zlib.error as error:
            raise MeshProtocolError(
                f"the response says Content-Encoding: gzip but its body is not valid gzip ({error})"
            ) from error

    def _feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            self._fed = True
            if self._decompressor.eof:
                # Another gzip member follows the one just finished.
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            decompressor = self._decompressor
            out = decompressor.decompress(data, _MAX_OUTPUT)
            while True:
                if out:
                    yield out
                # Output was capped: more is pending, in unconsumed_tail or inside zlib itself.
                if decompressor.eof or (
                    len(out) < _MAX_OUTPUT and not decompressor.unconsumed_tail
                ):
                    break
                out = decompressor.decompress(decompressor.unconsumed_tail, _MAX_OUTPUT)
            data = self._decompressor.unused_data if self._decompressor.eof else b""

    def finish(self) -> None:
        if self._fed and not self._decompressor.eof:
            raise MeshProtocolError("the gzip body ended early: the download was truncated")


def _decoder_for(response: Any) -> GzipDecoder | None:
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in {"", "identity", "gzip", "x-gzip"}:
        raise MeshProtocolError(
            f"unsupported Content-Encoding {encoding!r} (meshcore asks for gzip only)"
        )
    return GzipDecoder() if encoding in {"gzip", "x-gzip"} else None


def copy_response(
    response: Any,
    into: IO[bytes],
    guard: SizeGuard | None = None,
    deadline: Deadline | None = None,
) -> int:
    """Stream ``response`` (requests, stream=True) into ``into``; returns decoded bytes written.

    ``guard`` refuses decoded bytes past its limits before they are written; ``deadline`` stops
    a body that takes too long (both raise a MeshError)."""
    decoder = _decoder_for(response)
    if guard is not None:
        guard.start_chunk()
    written = 0
    with BackgroundWriter(into) as writer:
        for block in _raw_blocks(response, deadline):
            if guard is not None:
                guard.received(len(block))
            for out in decoder.feed(block) if decoder else (block,):
                if guard is not None:
                    guard.admit(len(out))
                writer.write(out)
                written += len(out)
        if decoder:
            decoder.finish()
    return written


def read_body(
    response: Any, limit: int, deadline: Deadline | None = None, what: str = "answer"
) -> bytes:
    """A whole (streamed) response body, transport gzip undone, refused past ``limit`` bytes."""
    decoder = _decoder_for(response)
    parts: list[bytes] = []
    size = 0
    for block in _raw_blocks(response, deadline, min(READ_SIZE, limit + 1)):
        for out in decoder.feed(block) if decoder else (block,):
            size += len(out)
            if size > limit:
                raise MeshPayloadTooLarge(
                    f"MESH's {what} is longer than the {limit:,} bytes this client reads: refused",
                    limit_name="max_response_body",
                    limit=limit,
                    status=getattr(response, "status_code", None),
                )
            parts.append(out)
    if decoder:
        decoder.finish()
    return b"".join(parts)


def _raw_blocks(
    response: Any, deadline: Deadline | None = None, size: int = READ_SIZE
) -> Iterator[bytes]:
    # decode_content=False: we decode above, per response, and must see the real bytes.
    # A read blocks until ``size`` bytes arrive: the deadline's watchdog closes the socket of a
    # body trickled too slowly, and the read then fails here.
    raw = response.raw
    while True:
        try:
            block = raw.read(size, decode_content=False)
        except Exception:
            if deadline is not None and deadline.expired:
                raise deadline.error() from None
            raise
        if deadline is not None:
            deadline.add(len(block))
        if not block:
            return
        yield block


class BackgroundWriter:
    """Writes to ``into`` from a helper thread, so file writes overlap with reading and gunzip
    (all three release the GIL). At most ``depth`` blocks wait, so memory stays bounded; every
    block is written before the ``with`` block ends, and a write error is raised in the caller."""

    def __init__(self, into: IO[bytes], depth: int = 4) -> None:
        self._into = into
        self._pending: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="meshcore-writer", daemon=True)

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def write(self, block: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._pending.put(block)

    def _run(self) -> None:
        while (block := self._pending.get()) is not None:
            if self._error is None:
                try:
                    self._into.write(block)
                except BaseException as error:  # reported to the caller by write()/__exit__
                    self._error = error

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._pending.put(None)
        self._thread.join()
        if self._error is not None and exc_type is None:
            raise self._error
