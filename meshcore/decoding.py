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

from .errors import MeshProtocolError

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


def copy_response(response: Any, into: IO[bytes]) -> int:
    """Stream ``response`` (requests, stream=True) into ``into``; returns decoded bytes written."""
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in {"", "identity", "gzip", "x-gzip"}:
        raise MeshProtocolError(
            f"unsupported Content-Encoding {encoding!r} (meshcore asks for gzip only)"
        )
    decoder = GzipDecoder() if encoding in {"gzip", "x-gzip"} else None
    written = 0
    with BackgroundWriter(into) as writer:
        for block in _raw_blocks(response):
            for out in decoder.feed(block) if decoder else (block,):
                writer.write(out)
                written += len(out)
        if decoder:
            decoder.finish()
    return written


def _raw_blocks(response: Any) -> Iterator[bytes]:
    # decode_content=False: we decode above, per response, and must see the real bytes.
    raw = response.raw
    while True:
        block = raw.read(READ_SIZE, decode_content=False)
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
