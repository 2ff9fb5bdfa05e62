"""gzip one chunk on several cores, as one ordinary gzip stream (the pigz technique).

The chunk is deflated block by block (the 128 KiB pieces it is read in) by a small thread pool
(zlib releases the GIL). Each block is primed with the previous 32 KiB as a preset dictionary, so
matches still reach back across block boundaries and the ratio is that of a single-threaded gzip;
each block ends on a byte boundary (Z_SYNC_FLUSH), so the raw deflate outputs simply concatenate. A gzip header, an empty
final block and the crc32/size trailer make a standard stream any gunzip reads.

Blocks that do not compress (random, encrypted or already-compressed bytes) are stored instead
(level 0): still gzip, so every chunk keeps the same Content-Encoding, but no CPU is wasted.
Memory stays bounded: only a few blocks are in flight at once.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_WINDOW = 32 * 1024
_PROBE = 16 * 1024
_STORED_MAX = 0xFFFF
_INCOMPRESSIBLE_RATIO = 0.95
# Header: magic, deflate, no flags, no mtime, no extra flags, OS "unknown".
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def gzip_stream(blocks: Iterator[bytes], level: int, workers: int = 1) -> Iterator[bytes]:
    """Yield a complete gzip stream of the concatenated ``blocks``, compressed in parallel."""
    yield _HEADER
    totals = [0, 0]  # crc32, size
    if workers > 1:
        yield from _deflate_parallel(_counted(blocks, totals), level, workers)
    else:
        dictionary = b""
        for block in _counted(blocks, totals):
            yield from deflate_block(block, dictionary, level)
            dictionary = _next_dictionary(dictionary, block)
    yield zlib.compressobj(0, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # empty final block
    yield struct.pack("<II", totals[0] & 0xFFFFFFFF, totals[1] & 0xFFFFFFFF)


def _counted(blocks: Iterator[bytes], totals: list[int]) -> Iterator[bytes]:
    for block in blocks:
        totals[0] = zlib.crc32(block, totals[0])
        totals[1] += len(block)
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
    return [compressor.compress(block), compressor.flush(zlib.Z_SYNC_FLUSH)]


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
