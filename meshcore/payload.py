"""What to send: a sized, re-readable payload, cut into chunks and gzipped piece by piece.

Memory stays bounded whatever the message size: a chunk body is a generator of 128 KiB pieces,
read from the source (bytes, a seekable binary file, or a temporary file that a non-seekable
stream or iterable was spooled to) only while requests is sending it. Because the source can be
re-read, a chunk can be uploaded again after a failure without keeping it in memory.
"""

from __future__ import annotations

import io
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import MeshPayloadTypeError, MeshValidationError

# Small enough that the few pieces in flight (reading, gzip, sending) cost a few MiB of RSS,
# large enough that per-piece overheads (thread hand-offs, gzip dictionary priming) stay ~1%.
PIECE = 128 * 1024
_SPOOL_IN_MEMORY = 4 * PIECE


class Payload:
    """A payload of known size whose byte ranges can be read again and again."""

    def __init__(self, fileobj: Any, start: int, size: int, owned: bool = False) -> None:
        self._file = fileobj
        self._start = start
        self.size = size
        self._owned = owned

    @classmethod
    def from_data(cls, data: object) -> Payload:
        """bytes-like, a binary file object (seekable or not), or an iterable of bytes."""
        if isinstance(data, str):
            raise MeshPayloadTypeError(
                "data is a str: MESH carries bytes, so encode it first (e.g. text.encode('utf-8'))"
            )
        if isinstance(data, bytes | bytearray | memoryview):
            return cls(io.BytesIO(data), 0, memoryview(data).nbytes, owned=True)
        if isinstance(data, io.TextIOBase):
            raise MeshPayloadTypeError("data is a text-mode file: open it in binary mode ('rb')")
        if hasattr(data, "read"):
            return cls._from_file(data)
        if isinstance(data, Iterable):
            return cls._spool(iter(data))
        raise MeshPayloadTypeError(
            f"data must be bytes, a binary file object or an iterable of bytes, not {type(data).__name__}"
        )

    @classmethod
    def _from_file(cls, fileobj: Any) -> Payload:
        probe = fileobj.read(0)
        if isinstance(probe, str):
            raise MeshPayloadTypeError("data is a text-mode file: open it in binary mode ('rb')")
        if not seekable(fileobj):
            return cls._spool(iter(lambda: fileobj.read(PIECE), b""))
        start = fileobj.tell()
        return cls(fileobj, start, _file_size(fileobj) - start)

    @classmethod
    def _spool(cls, pieces: Iterator[object]) -> Payload:
        """Copy a one-pass stream to a temporary file, so its size is known and chunks re-readable."""
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
        try:
            for piece in pieces:
                if isinstance(piece, str):
                    raise MeshPayloadTypeError(
                        "the data iterable yielded a str: yield bytes instead"
                    )
                if not isinstance(piece, bytes | bytearray | memoryview):
                    raise MeshPayloadTypeError(
                        f"the data iterable yielded {type(piece).__name__}, not bytes"
                    )
                spool.write(piece)
            size = spool.tell()
        except BaseException:
            spool.close()
            raise
        return cls(spool, 0, size, owned=True)

    def check_not_empty(self) -> None:
        if self.size <= 0:
            raise MeshValidationError("data is empty: MESH rejects empty messages")

    def chunk_count(self, chunk_size: int) -> int:
        return max(1, -(-self.size // chunk_size))

    def chunk_bounds(self, chunk_number: int, chunk_size: int) -> tuple[int, int]:
        """(offset, length) of the 1-based chunk_number."""
        offset = (chunk_number - 1) * chunk_size
        return offset, min(chunk_size, self.size - offset)

    def pieces(self, offset: int, length: int) -> Iterator[bytes]:
        """Yield the bytes in [offset, offset + length) in pieces of exactly PIECE bytes (the last
        one shorter): the gzip size bound counts on it, so a short read is topped up."""
        self._file.seek(self._start + offset)
        remaining = length
        while remaining > 0:
            piece = self._read_exactly(min(PIECE, remaining))
            remaining -= len(piece)
            yield piece

    def _read_exactly(self, size: int) -> bytes:
        piece = self._file.read(size)
        while len(piece) < size:
            more = self._file.read(size - len(piece))
            if not more:
                raise MeshValidationError(
                    "the source file ended early: did it change while sending?"
                )
            piece += more
        return piece

    def close(self) -> None:
        if self._owned:
            self._file.close()


def seekable(fileobj: Any) -> bool:
    """Can this file object seek (and so be read again for a retry)?"""
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _file_size(fileobj: Any) -> int:
    try:
        return os.fstat(fileobj.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        position = fileobj.tell()
        end = fileobj.seek(0, io.SEEK_END)
        fileobj.seek(position)
        return end


class Body:
    """A request body requests streams as-is: Content-Length when the length is known, else chunked."""

    def __init__(
        self,
        make_pieces: Callable[[], Iterator[bytes]],
        length: int | None = None,
        background: bool = True,
    ) -> None:
        self._make_pieces = make_pieces
        self._length = length
        # A background reader overlaps reading (and single-threaded gzip) with sending; a body
        # whose pieces already come from a gzip thread pool does not need one more thread.
        self._background = background
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._iterator = prefetch(self._make_pieces) if self._background else self._make_pieces()
        return self._iterator

    def __len__(self) -> int:
        # requests sends Content-Length when this is non-zero, else Transfer-Encoding: chunked.
        return self._length or 0

    def __bool__(self) -> bool:
        # requests replaces a falsy body with {}: an unknown length must not make us "empty".
        return True

    def close(self) -> None:
        """Stop the background reader, so the source can be read again for a retry."""
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]
            self._iterator = None


_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(make_pieces: Callable[[], Iterator[bytes]], depth: int = 3) -> Iterator[bytes]:
    """Produce pieces in a background thread while the caller sends the previous ones.

    Reading, gzip and socket writes all release the GIL, so compressing piece k+1 overlaps with
    sending piece k. The queue is small, so memory stays at a few pieces.
    """
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for piece in make_pieces():
                if not put(piece):
                    return
            put(_DONE)
        except BaseException as error:  # handed over to the consumer thread, never lost
            put(_Failure(error))

    worker = threading.Thread(target=produce, name="meshcore-body", daemon=True)
    worker.start()
    try:
        while True:
            item = pending.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
