"""Payload sources, chunk arithmetic, per-chunk gzip and the 100 MB request limit."""

from __future__ import annotations

import gzip
import io
import os
import random
import zlib

import pytest

from meshcore.gzipper import gzip_stream
from meshcore.payload import PIECE, Payload, prefetch
from meshcore.validation import MAX_CHUNK_SIZE, MAX_REQUEST_BODY

MiB = 1024 * 1024


class OneWayStream(io.RawIOBase):
    """A readable, non-seekable stream (like a socket or a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _chunks(payload: Payload, chunk_size: int) -> list[bytes]:
    count = payload.chunk_count(chunk_size)
    return [
        b"".join(payload.pieces(*payload.chunk_bounds(n, chunk_size))) for n in range(1, count + 1)
    ]


def test_it_splits_raw_data_into_equal_chunks_and_a_shorter_last_one():
    data = os.urandom(45 * 1000)
    payload = Payload.from_data(data)
    chunks = _chunks(payload, 20 * 1000)
    assert [len(chunk) for chunk in chunks] == [20000, 20000, 5000]
    assert b"".join(chunks) == data


def test_it_reads_a_seekable_file_from_its_current_position(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(b"HEADER" + b"x" * 100)
    with open(path, "rb") as source:
        source.read(6)
        payload = Payload.from_data(source)
        assert payload.size == 100 and payload.chunk_count(30) == 4
        assert b"".join(_chunks(payload, 30)) == b"x" * 100
        payload.close()
        assert not source.closed, "the caller's file stays open"


def test_it_spools_a_one_way_stream_to_a_temporary_file_not_memory():
    data = os.urandom(6 * MiB)
    payload = Payload.from_data(OneWayStream(data))
    assert payload.size == len(data)
    assert payload._file._rolled, "large one-way streams go to disk, keeping memory bounded"
    assert b"".join(_chunks(payload, 2 * MiB)) == data
    payload.close()


def test_it_spools_an_iterable_of_bytes():
    payload = Payload.from_data(iter([b"ab", bytearray(b"cd"), memoryview(b"ef")]))
    assert b"".join(payload.pieces(0, payload.size)) == b"abcdef"


def test_it_reads_in_bounded_pieces():
    payload = Payload.from_data(b"z" * (3 * PIECE + 5))
    sizes = [len(piece) for piece in payload.pieces(0, payload.size)]
    assert max(sizes) == PIECE and sum(sizes) == 3 * PIECE + 5


class ShortReads(io.BytesIO):
    """A seekable file that hands out at most 1,000 bytes per read, as some streams do."""

    def read(self, size=-1):
        return super().read(1000 if size is None or size < 0 else min(size, 1000))


def test_it_tops_up_short_reads_into_full_pieces():
    # The gzip size bound counts the blocks: a source's short reads must not add any.
    data = os.urandom(2 * PIECE + 5)
    sizes = [len(piece) for piece in Payload.from_data(ShortReads(data)).pieces(0, len(data))]
    assert sizes == [PIECE, PIECE, 5]


def test_it_notices_a_file_that_shrank_while_sending(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(b"x" * 100)
    with open(path, "rb") as source:
        payload = Payload.from_data(source)
        path.write_bytes(b"x" * 10)
        with pytest.raises(ValueError, match="ended early"):
            list(payload.pieces(0, 100))


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("level", [1, 4, 9])
def test_it_gzips_each_chunk_as_one_standard_stream(workers, level):
    rng = random.Random(level * 10 + workers)
    text = b"".join(
        b"%d,SMITH,JOHN,1970-01-01,LS1 4AB\n" % rng.randrange(10**9) for _ in range(60000)
    )
    data = text[: 2 * MiB] + os.urandom(MiB + 17) + text[2 * MiB :]
    blocks = (data[i : i + PIECE] for i in range(0, len(data), PIECE))
    compressed = b"".join(gzip_stream(blocks, level, workers))
    assert gzip.decompress(compressed) == data
    assert zlib.decompress(compressed, 16 + zlib.MAX_WBITS) == data


def test_it_keeps_the_ratio_of_a_single_threaded_gzip():
    rng = random.Random(1)
    text = b"".join(
        b"%d,%s,2026-01-%02d\n" % (n, rng.choice([b"A", b"BB"]), n % 28 + 1) for n in range(200000)
    )
    blocks = [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
    parallel = len(b"".join(gzip_stream(iter(blocks), 4, 2)))
    assert parallel <= len(gzip.compress(text, 4)) * 1.02


def test_it_stores_incompressible_blocks_instead_of_deflating_them():
    data = os.urandom(3 * MiB)
    blocks = (data[i : i + PIECE] for i in range(0, len(data), PIECE))
    compressed = b"".join(gzip_stream(blocks, 6, 2))
    assert gzip.decompress(compressed) == data
    # Stored deflate blocks cost 5 bytes per 64 KiB, plus a sync marker per block and the
    # gzip header and trailer: about 0.01%.
    assert len(compressed) - len(data) < len(data) * 0.0002 + 64


def test_it_never_builds_a_request_body_over_100_mb():
    """Worst case for a chunk of MAX_CHUNK_SIZE raw bytes: entirely incompressible."""
    sample = os.urandom(4 * MiB)
    blocks = (sample[i : i + PIECE] for i in range(0, len(sample), PIECE))
    overhead = len(b"".join(gzip_stream(blocks, 9, 2))) - len(sample)
    worst_case = MAX_CHUNK_SIZE + overhead * (MAX_CHUNK_SIZE / len(sample)) + 64
    assert worst_case < MAX_REQUEST_BODY


def test_it_prefetches_in_order_and_reports_producer_errors():
    assert list(prefetch(lambda: iter([b"a", b"b", b"c"]))) == [b"a", b"b", b"c"]

    def failing():
        yield b"a"
        raise OSError("disk gone")

    pieces = prefetch(failing)
    assert next(pieces) == b"a"
    with pytest.raises(OSError, match="disk gone"):
        next(pieces)


def test_it_stops_the_prefetch_thread_when_the_body_is_abandoned():
    produced = []

    def endless():
        for n in range(10**9):
            produced.append(n)
            yield b"x"

    pieces = prefetch(endless, depth=2)
    next(pieces)
    pieces.close()
    count = len(produced)
    assert count < 10
    assert len(produced) == count, "the producer has stopped"
