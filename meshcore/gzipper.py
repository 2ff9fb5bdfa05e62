"""gzip one chunk on several cores, as one ordinary gzip stream (the pigz technique).

The chunk is deflated block by block (the 128 KiB pieces it is read in) by a small thread pool
(zlib releases the GIL). Each block is primed with the previous 32 KiB as a preset dictionary, so
matches still reach back across block boundaries and the ratio is that of a single-threaded gzip;
each block ends on a byte boundary (Z_SYNC_FLUSH), so the raw deflate outputs simply concatenate. A gzip header, an empty
final block and the crc32/size trailer make a standard stream any gunzip reads.

Blocks that do not compress (random, encrypted or already-compressed bytes) are stored instead
(level 0): still gzip, so every chunk keeps the same Content-Encoding, but no CPU is wasted.
Memory stays bounded: only a few blocks are in flight at once.

A block is never written larger than its stored form (a deflated block that came out longer is
replaced by stored blocks), so the size of a gzip stream has an exact upper bound, whatever the
data and whatever zlib build is in use: ``gzip_bound``. ``meshcore.sizing`` relies on it to keep
every request under MESH's size limit.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_WINDOW = 32 * 1024
_PROBE = 16 * 1024
_STORED_MAX = 0xFFFF
_INCOMPRESSIBLE_RATIO = 0.95
# gzip level for compress=True: see meshcore/README.md ("Compression") for the measurements.
DEFAULT_LEVEL = 4
# Header: magic, deflate, no flags, no mtime, no extra flags, OS "unknown".
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# An empty final stored block ends the deflate data.
_FINAL = zlib.compressobj(0, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
_TRAILER_SIZE = 8  # crc32 and size, little-endian
# Bytes a gzip stream adds around its deflate blocks.
GZIP_FRAMING = len(_HEADER) + len(_FINAL) + _TRAILER_SIZE
# A stored deflate block carries at most 65,535 bytes behind a 5-byte header (RFC 1951 3.2.4).
_STORED_HEADER = 5


def gzip_stream(blocks: Iterator[bytes], level: int, workers: int = 1) -> Iterator[bytes]:
    """Yield a complete gzip stream of the concatenated ``blocks``, compressed in parallel."""
    totals = Totals()  # complete by the time gzip_member writes the trailer
    yield from gzip_member(deflate_stream(blocks, level, workers, totals), totals)


def gzip_member(deflated: Iterable[bytes], totals: Totals) -> Iterator[bytes]:
    """A gzip stream around deflate blocks made earlier by ``deflate_stream`` (e.g. spooled)."""
    yield _HEADER
    yield from deflated
    yield _FINAL
    yield totals.trailer()


class Totals:
    """The running crc32 and length of the raw bytes, for the gzip trailer."""

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0

    def add(self, block: bytes) -> None:
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)

    def trailer(self) -> bytes:
        return struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF)


def deflate_stream(
    blocks: Iterator[bytes], level: int, workers: int = 1, totals: Totals | None = None
) -> Iterator[bytes]:
    """Raw deflate blocks of the concatenated ``blocks``, not final, ending byte-aligned: they
    can be framed as gzip on their own (``gzip_member``) or follow other such blocks."""
    blocks = counted(blocks, totals if totals is not None else Totals())
    if workers > 1:
        yield from _deflate_parallel(blocks, level, workers)
        return
    dictionary = b""
    for block in blocks:
        yield from deflate_block(block, dictionary, level)
        dictionary = _next_dictionary(dictionary, block)


def gzip_bound(length: int, block_size: int) -> int:
    """The most bytes a gzip stream of ``length`` raw bytes can take, when they arrive in blocks
    of ``block_size`` (the last one shorter): every block at worst stored, plus the framing."""
    full, rest = divmod(length, block_size)
    return (
        length
        + GZIP_FRAMING
        + _STORED_HEADER * (full * _stored_count(block_size) + _stored_count(rest))
    )


def _stored_count(length: int) -> int:
    return -(-length // _STORED_MAX)


def default_workers() -> int:
    """Threads for gzip when the caller does not say: up to 4, never more than the CPUs."""
    return max(1, min(4, os.cpu_count() or 1))


def counted(blocks: Iterator[bytes], totals: Totals) -> Iterator[bytes]:
    """The blocks, unchanged, adding each one to ``totals`` on the way."""
    for block in blocks:
        totals.add(block)
        yield block


def _next_dictionary(dictionary: bytes, block: bytes) -> bytes:
    return (dictionary + block[-_WINDOW:])[-_WINDOW:]


def _deflate_parallel(blocks: Iterator[bytes], level: int, workers: int) -> Iterator[bytes]:
    dictionary = b""
    in_flight: deque[Future[list[bytes]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meshcore-gzip") as pool:
        try:
            for block in blocks:
                in_flight.append(pool.submit(deflate_block, block, dictionary, level))
                dictionary = _next_dictionary(dictionary, block)
                # Keep the pool busy but bounded: while one block is sent, each worker has one.
                while len(in_flight) > workers:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()


def deflate_block(block: bytes, dictionary: bytes, level: int) -> list[bytes]:
    """Raw deflate of one block, ending byte-aligned and *not* final, so blocks concatenate.

    Returned as parts, not joined, to save a copy of the block.
    """
    if not level or _looks_incompressible(block):
        return _stored(block)
    if dictionary:
        compressor = zlib.compressobj(
            level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, dictionary
        )
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(block), compressor.flush(zlib.Z_SYNC_FLUSH)]
    # The probe can be fooled (a compressible start, random after it); stored is then smaller,
    # and never exceeding it is what makes gzip_bound exact.
    if sum(map(len, parts)) > len(block) + _STORED_HEADER * _stored_count(len(block)):
        return _stored(block)
    return parts


def _stored(block: bytes) -> list[bytes]:
    """Deflate "stored" blocks (RFC 1951 3.2.4): a non-final header, LEN and NLEN, then the bytes
    as they are. The previous block ended byte-aligned, so the header needs no bit padding."""
    parts = []
    for start in range(0, len(block), _STORED_MAX):
        piece = block[start : start + _STORED_MAX]
        parts.append(b"\x00" + struct.pack("<HH", len(piece), len(piece) ^ 0xFFFF) + piece)
    return parts


def _looks_incompressible(block: bytes) -> bool:
    sample = block[:_PROBE]
    return (
        len(sample) >= 4096 and len(zlib.compress(sample, 1)) >= len(sample) * _INCOMPRESSIBLE_RATIO
    )
