"""The request size limit without a server: the gzip bound, the safe chunk size, the one-pass
decision, needs_chunking, and the refusals that must happen before any HTTP request."""

from __future__ import annotations

import gzip
import io
import os
import re
import tempfile
import zlib

import pytest
import responses

import meshcore.gzipper
from meshcore import (
    MeshChunkingNotAllowed,
    MeshClient,
    MeshError,
    MeshPayloadTypeError,
    MeshValidationError,
    max_chunk_size,
    needs_chunking,
)
from meshcore.gzipper import deflate_block, gzip_bound, gzip_stream
from meshcore.payload import PIECE
from tests.meshcore.helpers import BASE, MAILBOX, csv_like, unit_client
from tests.sandbox import PASSWORD, SHARED_KEY

SMALL = 100_000
OUTBOX = re.compile(rf"{BASE}/messageexchange/{MAILBOX}/outbox(/M1/\d+)?$")


def _gzip(data: bytes, level: int = 4, workers: int = 1) -> bytes:
    blocks = (data[i : i + PIECE] for i in range(0, len(data), PIECE))
    return b"".join(gzip_stream(blocks, level, workers))


@pytest.fixture
def no_http():
    """Any request at all fails the test (responses refuses unregistered calls)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        assert len(mock.calls) == 0


@pytest.fixture
def outbox():
    """A MESH outbox that takes every send and chunk: ``outbox.bodies`` holds what each carried."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.bodies = []

        def accept(request):
            body = request.body
            mock.bodies.append(body if isinstance(body, bytes) else b"".join(body))
            return 202, {}, '{"message_id": "M1"}'

        mock.add_callback("POST", OUTBOX, callback=accept)
        yield mock


def _requests(mock) -> list[tuple[str, int]]:
    """(mex-Chunk-Range, body bytes) of each request made."""
    return [
        (call.request.headers["mex-Chunk-Range"], len(body))
        for call, body in zip(mock.calls, mock.bodies, strict=True)
    ]


# -- the worst case of gzip, and the safe chunk size ---------------------------------------------


@pytest.mark.parametrize("size", [1, PIECE - 1, PIECE, 0xFFFF * 2 + 1, 3 * PIECE + 17])
def test_the_gzip_bound_is_reached_exactly_by_incompressible_data(size):
    data = os.urandom(size)
    compressed = _gzip(data, workers=2)
    assert len(compressed) == gzip_bound(size, PIECE)
    assert gzip.decompress(compressed) == data


@pytest.mark.parametrize("level", [1, 4, 9])
def test_no_data_makes_gzip_exceed_the_bound(level):
    fooling = bytes(16 * 1024) + os.urandom(PIECE - 16 * 1024)  # the probe sees only zeros
    for data in (bytes(PIECE * 3), csv_like(PIECE * 3), fooling * 3, os.urandom(PIECE * 3)):
        compressed = _gzip(data, level, workers=2)
        assert len(compressed) <= gzip_bound(len(data), PIECE)
        assert gzip.decompress(compressed) == data


@pytest.mark.parametrize("size", [1, 100, 4000])
def test_a_block_that_deflate_would_grow_is_stored_instead(size):
    # Too small for the incompressible-data probe, so zlib gets it, and zlib's own stored block
    # plus the sync flush marker come out larger than one stored block.
    block = os.urandom(size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert len(compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)) > size + 5
    assert sum(map(len, deflate_block(block, b"", 9))) == size + 5


@pytest.mark.parametrize("limit", [1_000, SMALL, 5_000_000, 20_000_000, 100_000_000])
def test_the_safe_chunk_size_is_the_largest_whose_worst_case_fits(limit):
    safe = max_chunk_size(limit)
    assert gzip_bound(safe, PIECE) <= limit < gzip_bound(safe + 1, PIECE)
    assert max_chunk_size(limit, compress=False) == limit


def test_the_safe_chunk_size_at_the_internet_limit():
    # A 20 MiB chunk of random bytes would be 20.97 MB on the wire: 19,997,687 raw bytes fit.
    assert max_chunk_size() == 19_997_687
    assert gzip_bound(20 * 1024 * 1024, PIECE) > 20_000_000


@pytest.mark.parametrize("limit", [999, 100_000_001, 0, True, 1.5, "20MB"])
def test_it_rejects_a_request_limit_out_of_range(no_http, limit):
    with pytest.raises(MeshValidationError, match="max_request_bytes"):
        MeshClient(BASE, MAILBOX, PASSWORD, SHARED_KEY, max_request_bytes=limit)
    with pytest.raises(MeshValidationError, match="max_request_bytes"):
        unit_client().send("X26ABC2", "WF", b"data", max_request_bytes=limit)
    with pytest.raises(MeshValidationError, match="max_request_bytes"):
        needs_chunking(b"data", max_request_bytes=limit)


# -- one pass, one decision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "chunked"),
    [
        (csv_like(max_chunk_size(SMALL)), False),  # decided by the raw size: nothing compressed
        (os.urandom(max_chunk_size(SMALL)), False),
        (os.urandom(max_chunk_size(SMALL) + 1), True),  # one byte more of random: cannot fit
        (csv_like(3 * SMALL), False),  # three times the limit, fits compressed (about 4:1)
        (csv_like(5 * SMALL), True),
        (csv_like(2 * SMALL) + os.urandom(SMALL // 2), True),
    ],
)
def test_needs_chunking_gives_exactly_sends_decision(outbox, data, chunked):
    assert needs_chunking(data, max_request_bytes=SMALL) is chunked
    unit_client(max_request_bytes=SMALL).send("X26ABC2", "WF", data)
    requests_made = _requests(outbox)
    assert (len(requests_made) > 1) is chunked
    assert all(size <= SMALL for _, size in requests_made)
    decoded = b"".join(gzip.decompress(body) for body in outbox.bodies)
    assert decoded == data


def test_needs_chunking_reads_paths_and_files_and_leaves_them_where_they_were(tmp_path):
    data = b"HEADER" + os.urandom(2 * SMALL)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    assert needs_chunking(path, max_request_bytes=SMALL) is True
    assert needs_chunking(path, max_request_bytes=1_000_000) is False
    with open(path, "rb") as source:
        source.read(6)
        assert needs_chunking(source, max_request_bytes=SMALL) is True
        assert source.tell() == 6 and not source.closed
    assert needs_chunking(bytearray(data), max_request_bytes=SMALL, compress=False) is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text", "path, bytes or a seekable file"),
        (iter([b"a"]), "path, bytes or a seekable file"),
        (io.BufferedReader(io.BytesIO(b"x")), None),  # seekable: fine
    ],
)
def test_needs_chunking_refuses_what_it_would_use_up(data, message):
    if message is None:
        assert needs_chunking(data) is False
        return
    with pytest.raises(MeshPayloadTypeError, match=message):
        needs_chunking(data)


def test_needs_chunking_refuses_a_one_way_stream():
    read, write = os.pipe()
    with os.fdopen(read, "rb") as pipe, os.fdopen(write, "wb"):
        with pytest.raises(MeshPayloadTypeError, match="seekable"):
            needs_chunking(pipe)


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.read_bytes += count or 0
        return count


def test_needs_chunking_stops_reading_once_the_limit_is_passed(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(20_000_000))
    with CountingFile(path) as source:
        assert needs_chunking(source, max_request_bytes=1_000_000) is True
        # The first chunk's worth, then no more than the gzip threads had in hand.
        assert source.read_bytes <= 1_000_000 + 8 * PIECE


def test_every_byte_is_compressed_once_whole_or_chunked(outbox, monkeypatch):
    compressed = []

    def counting(block, dictionary, level):
        compressed.append(len(block))
        return deflate_block(block, dictionary, level)

    monkeypatch.setattr(meshcore.gzipper, "deflate_block", counting)
    client = unit_client(max_request_bytes=SMALL)
    whole = csv_like(3 * SMALL, seed=7)  # spooled, then one request
    client.send("X26ABC2", "WF", whole)
    assert sum(compressed) == len(whole) and len(outbox.calls) == 1
    compressed.clear()
    mixed = csv_like(2 * SMALL, seed=8) + os.urandom(3 * SMALL)  # spooled chunks, then streamed
    client.send("X26ABC2", "WF", mixed)
    assert sum(compressed) == len(mixed) and len(outbox.calls) == 1 + 6


class TrackedTemporaryFiles:
    def __init__(self, monkeypatch) -> None:
        self.files = []
        real = tempfile.TemporaryFile

        def make(*args, **kwargs):
            self.files.append(real(*args, **kwargs))
            return self.files[-1]

        monkeypatch.setattr(tempfile, "TemporaryFile", make)

    def all_closed(self) -> bool:
        return bool(self.files) and all(file.closed for file in self.files)


def test_the_spool_is_removed_after_a_send_a_refusal_and_a_failure(outbox, monkeypatch):
    spools = TrackedTemporaryFiles(monkeypatch)
    client = unit_client(max_request_bytes=SMALL)
    client.send("X26ABC2", "WF", os.urandom(3 * SMALL))
    with pytest.raises(MeshChunkingNotAllowed):
        client.send("X26ABC2", "WF", os.urandom(3 * SMALL), allow_chunking=False)
    outbox.replace("POST", OUTBOX, status=417, json={"errorDescription": "Unregistered"})
    with pytest.raises(MeshError):
        client.send("X26ABC2", "WF", os.urandom(3 * SMALL))
    assert len(spools.files) == 3 and spools.all_closed()


# -- refusals before any request -----------------------------------------------------------------


def test_a_message_that_needs_chunks_is_refused_unsent_when_chunking_is_not_allowed(no_http):
    with pytest.raises(MeshChunkingNotAllowed) as raised:
        unit_client(max_request_bytes=SMALL).send(
            "X26ABC2", "WF", csv_like(5 * SMALL), allow_chunking=False
        )
    assert isinstance(raised.value, MeshValidationError) and isinstance(raised.value, ValueError)
    assert (raised.value.size, raised.value.max_request_bytes) == (5 * SMALL, SMALL)
    assert "500,000 bytes, more than 100,000 bytes even after compression" in str(raised.value)


def test_chunk_size_is_not_used_when_chunking_is_not_allowed(outbox):
    data = csv_like(3 * SMALL)
    unit_client(max_request_bytes=SMALL).send(
        "X26ABC2", "WF", data, chunk_size=10_000, allow_chunking=False
    )
    assert [chunk_range for chunk_range, _ in _requests(outbox)] == ["1:1"]
    assert gzip.decompress(outbox.bodies[0]) == data


def test_an_uncompressed_fixed_chunk_over_the_limit_is_refused_unsent(no_http):
    with pytest.raises(MeshValidationError, match="chunk_size 200,000 makes uncompressed"):
        unit_client(max_request_bytes=SMALL).send(
            "X26ABC2", "WF", os.urandom(3 * SMALL), chunk_size=200_000, compress=False
        )


def test_send_chunk_checks_a_callers_chunk_against_the_limit(no_http):
    client = unit_client(max_request_bytes=SMALL)
    with pytest.raises(MeshValidationError, match="more than 100,000 bytes after compression"):
        client.send_chunk("M1", 2, 3, os.urandom(SMALL))
    with pytest.raises(MeshValidationError, match="uncompressed"):
        client.send_chunk("M1", 2, 3, os.urandom(SMALL + 1), compress=False)


def test_send_chunk_sends_a_compressible_chunk_larger_than_the_safe_size(outbox):
    data = csv_like(2 * SMALL)
    unit_client(max_request_bytes=SMALL).send_chunk("M1", 2, 3, data)
    (call,) = outbox.calls
    assert call.request.headers["mex-Chunk-Range"] == "2:3"
    assert int(call.request.headers["Content-Length"]) == len(outbox.bodies[0]) <= SMALL
    assert gzip.decompress(outbox.bodies[0]) == data


@pytest.mark.parametrize(
    ("resume_from", "message"),
    [
        (("M1", 2, 5), "cuts into 3 chunks"),  # not this layout
        (("M1", 4), "chunk 4 of \\?"),
        (("M1", 3, 2), "impossible"),
        (("M1", 0, 3), "impossible"),
        (("M1", 1, True), "ints"),
        (("M1", 1, 2, 3), "total_chunks"),
    ],
)
def test_it_rejects_a_resume_point_that_does_not_match_the_layout(no_http, resume_from, message):
    data = os.urandom(3 * max_chunk_size(SMALL) - 10)  # three chunks
    with pytest.raises(MeshValidationError, match=message):
        unit_client(max_request_bytes=SMALL).send("X26ABC2", "WF", data, resume_from=resume_from)


def test_a_resume_without_chunking_means_the_single_request_was_made(no_http):
    client = unit_client(max_request_bytes=SMALL)
    data = os.urandom(3 * SMALL)
    assert client.send("X26ABC2", "WF", data, allow_chunking=False, resume_from=("M1", 1)) == "M1"
    with pytest.raises(MeshValidationError, match="allow_chunking is False"):
        client.send("X26ABC2", "WF", data, allow_chunking=False, resume_from=("M1", 2, 4))
