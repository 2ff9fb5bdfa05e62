"""How large one request may be, and when a message goes in chunks (part of sending).

**The limit.** MESH takes at most ``max_request_bytes`` in one HTTP request body, counted after
compression: 20,000,000 bytes on the internet endpoints (every current one), 100,000,000 over HSCN
(mesh-protocol.md 4.8 and 7.1). That holds for a whole message sent in one request and for every
chunk of a chunked one.

**A safe raw chunk size.** gzip cannot promise to shrink data, but meshcore's gzipper can promise
how much it grows: the raw bytes arrive in blocks of ``PIECE`` (128 KiB, always full but the last,
see ``Payload.pieces``), and a block is never written larger than deflate's *stored* form, which
is the block plus a 5-byte header per 65,535 bytes. Add the gzip header, the empty final block and
the trailer (``GZIP_FRAMING``, 23 bytes) and ``gzip_bound(n)`` is the exact worst case for ``n`` raw
bytes: random, encrypted or already-zipped data included, whatever zlib build Python links.
``max_chunk_size(limit)`` is the largest ``n`` whose bound fits: 19,997,687 raw bytes for the
20 MB limit (a 20 MiB raw chunk of random bytes would be 20.97 MB on the wire). Chunks of that size
can be compressed while they stream out (``Transfer-Encoding: chunked``), with no need to know
their compressed size first. Uncompressed, the safe size is the limit itself.

**One request whenever it fits.** MESH wants the number of chunks in the first request
(``mex-Chunk-Range: 1:n``), and the spec wants a message chunked only when its *compressed* size
does not fit in one request. So before anything is sent:

* a message no larger than the safe chunk size fits, whatever it holds: one request, compressed on
  the fly (the decision costs nothing);
* a larger one is compressed once, in a single streaming pass, cut into segments of the safe chunk
  size (each compressed on its own, as chunks must be), into an anonymous temporary file (the
  ``Spool``), until either the whole message is done and fits (``GZIP_FRAMING`` plus the deflate
  bytes of every segment at most the limit) or the compressed bytes pass the limit. If it fits, the
  segments' deflate blocks form one gzip stream (they end byte-aligned, and a segment that does
  not refer back to the one before is still valid deflate), sent from the spool with a
  Content-Length. If not, the message goes in ``ceil(size / safe chunk size)`` chunks: those
  already in the spool are sent from it, the rest compressed on the fly as they go out. Nothing is
  compressed twice; the spool never holds more than the limit plus one segment (under 40 MB at
  the 20 MB limit); memory stays at a few pieces.

**Chunking only where the recipient can take it.** With ``allow_chunking=False`` a message that
does not fit raises ``MeshChunkingNotAllowed`` at the moment that is known: before any request.
``needs_chunking`` answers the same question without sending, for a caller that must refuse at
queue time: free when the raw size decides (at most the safe chunk size: no; uncompressed: by the
size), otherwise it reads and compresses the file until its compressed bytes pass the limit or it
ends, keeping nothing: for CSV-like data at about 4:1, at most ~80 MB read at the 20 MB limit
(2.0-2.4 s measured on a busy 2-core machine at level 4); random data stops after ~20 MB. The
answer depends on the gzip level, so ask with the level the send will use (the default, 4).

**Reproducible layout, for resuming.** The chunks of a message are a pure function of its raw size
and the raw chunk size, which is the safe size for ``max_request_bytes`` (or the caller's
``chunk_size``). A resume must use the same data, ``max_request_bytes`` and ``chunk_size``; it needs
no compression to know where chunk k starts.

**A caller's chunk_size.** ``chunk_size`` fixes the layout instead: a message larger than it is cut
into chunks of exactly that many raw bytes, as meshcore has always done (conformance runs, layouts
saved by older versions). Chunks no larger than the safe size stream as usual; a larger
``chunk_size`` (say the 20 MiB NeoMesh used to configure) is still honoured, but each such chunk is
compressed to the spool first and refused with ``MeshValidationError`` if it does not fit, before
its request is made.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import validation
from .errors import MeshChunkingNotAllowed, MeshPayloadTypeError, MeshValidationError
from .gzipper import (
    DEFAULT_LEVEL,
    GZIP_FRAMING,
    Totals,
    counted,
    default_workers,
    deflate_stream,
    gzip_bound,
    gzip_member,
)
from .payload import PIECE, Body, Payload, seekable


def max_chunk_size(
    max_request_bytes: int = validation.DEFAULT_MAX_REQUEST_BYTES, *, compress: bool = True
) -> int:
    """The most raw bytes a chunk can hold so that its request fits ``max_request_bytes`` whatever
    the data (19,997,687 for the 20 MB limit, compressed)."""
    limit = validation.max_request_bytes(max_request_bytes)
    if not compress:
        return limit
    low, high = 1, limit  # gzip_bound(1) fits: the smallest limit allowed is far above it
    while low < high:
        middle = (low + high + 1) // 2
        if gzip_bound(middle, PIECE) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def needs_chunking(
    data: Any,
    *,
    max_request_bytes: int = validation.DEFAULT_MAX_REQUEST_BYTES,
    compress: bool = True,
    compress_level: int = DEFAULT_LEVEL,
) -> bool:
    """Would ``MeshClient.send`` (with no ``chunk_size``) cut this message into chunks?

    ``data`` is a path (``os.PathLike``), bytes, or a seekable binary file (read from its
    position, which is restored). The answer is exactly send's; what it costs is in the module
    docstring.
    """
    limit = validation.max_request_bytes(max_request_bytes)
    with _payload_of(data) as payload:
        safe = max_chunk_size(limit, compress=compress)
        if payload.size <= safe or not compress:
            return payload.size > safe
        counter = Spool(keep=False)
        for number in range(1, payload.chunk_count(safe) + 1):
            pieces = payload.pieces(*payload.chunk_bounds(number, safe))
            if not counter.add(pieces, compress_level, default_workers(), limit - GZIP_FRAMING):
                return True
        return False


@contextlib.contextmanager
def _payload_of(data: Any) -> Iterator[Payload]:
    if isinstance(data, os.PathLike):
        with open(data, "rb") as source:
            yield Payload.from_data(source)
        return
    position = None
    if hasattr(data, "read"):
        if not seekable(data):
            # Reading a one-way stream here would leave nothing to send.
            raise MeshPayloadTypeError(
                "needs_chunking reads the data: pass a path, bytes or a seekable file"
            )
        position = data.tell()
    elif not isinstance(data, bytes | bytearray | memoryview):
        raise MeshPayloadTypeError(
            f"needs_chunking takes a path, bytes or a seekable file, not {type(data).__name__}"
        )
    payload = Payload.from_data(data)
    try:
        yield payload
    finally:
        payload.close()
        if position is not None:
            data.seek(position)


@dataclass(frozen=True)
class Segment:
    offset: int  # where its deflate bytes start in the spool
    length: int  # how many there are
    totals: Totals  # crc32 and length of its raw bytes


class Spool:
    """Deflate blocks of consecutive segments of a payload, in an anonymous temporary file (the
    operating system removes it when it is closed or the process dies). ``keep=False`` only
    counts: what ``needs_chunking`` uses."""

    def __init__(self, keep: bool = True) -> None:
        self._file = tempfile.TemporaryFile(prefix="meshcore-spool-") if keep else None
        self.size = 0
        self.segments: list[Segment] = []
        self.whole = Totals()

    def add(self, pieces: Iterator[bytes], level: int, workers: int, budget: int | None) -> bool:
        """Deflate one more segment at the end. False, and the segment left out, as soon as the
        spool holds more than ``budget`` bytes."""
        start, totals = self.size, Totals()
        stream = deflate_stream(counted(pieces, self.whole), level, workers, totals)
        try:
            for part in stream:
                if self._file is not None:
                    self._file.write(part)
                self.size += len(part)
                if budget is not None and self.size > budget:
                    return False
        finally:
            stream.close()  # on an early return: stops the gzip threads
        self.segments.append(Segment(start, self.size - start, totals))
        return True

    def body(self, segment: Segment | None = None) -> Body:
        """One segment as a gzip stream, or (None) every segment as one: length known."""
        assert self._file is not None, "a counting spool has nothing to send"
        self._file.flush()
        offset, length, totals = (
            (segment.offset, segment.length, segment.totals)
            if segment
            else (0, self.size, self.whole)
        )
        stored = Payload(self._file, 0, self.size)
        return Body(
            lambda: gzip_member(stored.pieces(offset, length), totals), GZIP_FRAMING + length
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Plan:
    """How one payload goes out: ``total`` requests of ``chunk_size`` raw bytes each (the last
    shorter), and which of them come ready-compressed from a spool."""

    def __init__(
        self,
        payload: Payload,
        total: int,
        chunk_size: int,
        *,
        spool: Spool | None = None,
        check: tuple[int, int, int] | None = None,
    ) -> None:
        self.payload = payload
        self.total = total
        self.chunk_size = chunk_size
        self._spool = spool
        # (limit, level, workers): chunks that may not fit are compressed and checked first.
        self._check = check
        self._checked: tuple[int, Spool] | None = None

    def bounds(self, number: int) -> tuple[int, int]:
        """(offset, length) of chunk ``number`` in the raw payload."""
        if self.total == 1:
            return 0, self.payload.size
        return self.payload.chunk_bounds(number, self.chunk_size)

    def prepare(self, number: int) -> None:
        """Before chunk ``number``'s request: compress it to disk when it might not fit, and
        refuse it (nothing of it sent) if it does not."""
        if self._check is None:
            return
        limit, level, workers = self._check
        offset, length = self.bounds(number)
        if gzip_bound(length, PIECE) <= limit:
            return
        self._release_checked()
        spool = Spool()
        self._checked = (number, spool)
        if not spool.add(self.payload.pieces(offset, length), level, workers, limit - GZIP_FRAMING):
            what = f"chunk {number} of {self.total}" if self.total > 1 else "the data"
            raise MeshValidationError(
                f"{what} ({length:,} raw bytes) is more than {limit:,} bytes after compression, "
                "the most MESH takes in one request (max_request_bytes); use a chunk_size of at "
                f"most {max_chunk_size(limit):,}, or leave chunk_size unset"
            )

    def spooled_body(self, number: int) -> Body | None:
        """A ready-compressed body for chunk ``number``, or None: compress it on the way."""
        if self._checked is not None and self._checked[0] == number:
            return self._checked[1].body(self._checked[1].segments[0])
        if self._spool is None:
            return None
        if self.total == 1:
            return self._spool.body()
        segments = self._spool.segments
        return self._spool.body(segments[number - 1]) if number <= len(segments) else None

    def _release_checked(self) -> None:
        if self._checked is not None:
            self._checked[1].close()
            self._checked = None

    def close(self) -> None:
        self._release_checked()
        if self._spool is not None:
            self._spool.close()


def plan_send(
    payload: Payload,
    *,
    max_request_bytes: int,
    chunk_size: int | None,
    compress: bool,
    allow_chunking: bool,
    level: int,
    workers: int,
) -> Plan:
    """Decide, before any request, how a new message goes out (see the module docstring).

    Raises MeshChunkingNotAllowed when it needs chunks and ``allow_chunking`` is False.
    """
    limit = max_request_bytes
    if chunk_size is not None and allow_chunking:
        return _fixed(payload, limit, chunk_size, compress, level, workers)
    safe = max_chunk_size(limit, compress=compress)
    if payload.size <= safe:
        return Plan(payload, 1, safe)
    if not compress:
        return _chunked(payload, limit, safe, compress, allow_chunking)
    spool = Spool()
    try:
        for number in range(1, payload.chunk_count(safe) + 1):
            spool.add(payload.pieces(*payload.chunk_bounds(number, safe)), level, workers, None)
            if GZIP_FRAMING + spool.size > limit:
                return _chunked(payload, limit, safe, compress, allow_chunking, spool)
    except BaseException:
        spool.close()
        raise
    return Plan(payload, 1, safe, spool=spool)


def plan_resume(
    payload: Payload,
    *,
    max_request_bytes: int,
    chunk_size: int | None,
    compress: bool,
    level: int,
    workers: int,
) -> Plan:
    """The layout of a message already started: from the sizes alone, nothing compressed."""
    if chunk_size is not None:
        return _fixed(payload, max_request_bytes, chunk_size, compress, level, workers)
    safe = max_chunk_size(max_request_bytes, compress=compress)
    return Plan(payload, payload.chunk_count(safe), safe)


def _fixed(
    payload: Payload, limit: int, chunk_size: int, compress: bool, level: int, workers: int
) -> Plan:
    largest = min(chunk_size, payload.size)
    if not compress and largest > limit:
        raise MeshValidationError(
            f"chunk_size {chunk_size:,} makes uncompressed requests of {largest:,} bytes, more "
            f"than max_request_bytes {limit:,}: use at most {limit:,}, or leave chunk_size unset"
        )
    check = (limit, level, workers) if compress else None
    return Plan(payload, payload.chunk_count(chunk_size), chunk_size, check=check)


def _chunked(
    payload: Payload,
    limit: int,
    safe: int,
    compress: bool,
    allow_chunking: bool,
    spool: Spool | None = None,
) -> Plan:
    if not allow_chunking:
        raise MeshChunkingNotAllowed.for_message(
            size=payload.size, max_request_bytes=limit, compress=compress
        )
    return Plan(payload, payload.chunk_count(safe), safe, spool=spool)
