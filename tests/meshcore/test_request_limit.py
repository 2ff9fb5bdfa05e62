"""The per-request size limit against the real sandbox, measured at a recording proxy.

MESH takes at most 20,000,000 bytes per request on the internet endpoints, after compression
(mesh-protocol.md 7.1). A message goes in one request whenever it fits, in chunks that each fit
otherwise, and to a recipient that cannot take chunks not at all. The proxy counts the bytes each
request really carried; every received message is compared with what was sent by sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from meshcore import (
    DEFAULT_MAX_REQUEST_BYTES,
    MeshChunkingNotAllowed,
    MeshValidationError,
    max_chunk_size,
    needs_chunking,
)
from tests.meshcore.helpers import csv_like

pytestmark = pytest.mark.sandbox

MB = 1_000_000
LIMIT = DEFAULT_MAX_REQUEST_BYTES
SMALL = 100_000  # a small limit, so the same rules can be shown quickly on small payloads


class Payloads:
    """Payload files made on first use and shared by the module's tests: (path, sha256)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._made: dict[tuple[str, int], tuple[Path, str]] = {}

    def get(self, kind: str, size: int) -> tuple[Path, str]:
        if (kind, size) not in self._made:
            path = self._directory / f"{kind}-{size}.bin"
            data = os.urandom(size) if kind == "random" else csv_like(size)
            path.write_bytes(data)
            self._made[kind, size] = (path, hashlib.sha256(data).hexdigest())
        return self._made[kind, size]


@pytest.fixture(scope="module")
def payloads():
    with tempfile.TemporaryDirectory(prefix="meshcore-limit-") as directory:
        yield Payloads(Path(directory))


class Sha256Sink:
    """A write-only file that keeps only the sha256 and the length of what it was given."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def received_sha256(recipient, message_id: str):
    sink = Sha256Sink()
    info = recipient.download(message_id, sink)
    return info, sink.digest.hexdigest()


def send_file(sender, path: Path, **options) -> str:
    with open(path, "rb") as source:
        return sender.send("X26ABC2", "TEST_WORKFLOW", source, **options)


def chunk_ranges(proxy) -> list[str]:
    return [request.chunk_range for request in proxy.posts()]


def body_sizes(proxy) -> list[int]:
    return [request.body_bytes for request in proxy.posts()]


# -- the rule at MESH's real limit --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "random"])
def test_a_15_mb_message_goes_in_one_request(proxied_sender, recipient, proxy, payloads, kind):
    path, sha256 = payloads.get(kind, 15 * MB)
    message_id = send_file(proxied_sender, path)
    assert chunk_ranges(proxy) == ["1:1"]
    assert body_sizes(proxy)[0] <= LIMIT
    info, received = received_sha256(recipient, message_id)
    assert received == sha256 and info.total_chunks == 1


def test_a_message_over_20_mb_that_compresses_under_it_goes_in_one_request(
    proxied_sender, recipient, proxy, payloads
):
    path, sha256 = payloads.get("csv", 30 * MB)
    assert needs_chunking(path) is False
    message_id = send_file(proxied_sender, path)
    (request,) = proxy.posts()
    assert request.chunk_range == "1:1" and request.body_bytes <= LIMIT
    # Compressed once, to a spool, before the request: so its length was known and declared.
    assert int(request.headers["content-length"]) == request.body_bytes
    info, received = received_sha256(recipient, message_id)
    assert received == sha256 and info.total_chunks == 1 and info.size == 30 * MB


def test_a_60_mb_random_message_goes_in_chunks_that_each_fit(
    proxied_sender, recipient, proxy, payloads
):
    path, sha256 = payloads.get("random", 60 * MB)
    progress = []
    message_id = send_file(proxied_sender, path, on_progress=lambda *a: progress.append(a[:2]))
    sizes = body_sizes(proxy)
    assert chunk_ranges(proxy) == ["1:4", "2:4", "3:4", "4:4"]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert max(sizes) <= LIMIT, sizes
    # As large as the limit allows: incompressible chunks of the safe raw size fill it exactly.
    assert sizes[:3] == [LIMIT] * 3 and sum(sizes) > 60 * MB
    info, received = received_sha256(recipient, message_id)
    assert received == sha256 and info.total_chunks == 4


def test_a_recipient_that_cannot_take_chunks_is_refused_before_any_request(
    proxied_sender, proxy, payloads
):
    path, _ = payloads.get("random", 60 * MB)
    assert needs_chunking(path) is True
    with pytest.raises(MeshChunkingNotAllowed) as raised:
        send_file(proxied_sender, path, allow_chunking=False)
    assert proxy.requests == []
    message = str(raised.value)
    assert "60,000,000 bytes" in message and "20,000,000" in message
    assert "does not accept chunked messages" in message and "Nothing was sent" in message
    assert (raised.value.size, raised.value.max_request_bytes) == (60 * MB, LIMIT)


# -- the same rules at a small limit: every path, quickly ----------------------------------------


def test_a_compressible_message_many_times_the_limit_goes_whole(proxied_sender, recipient, proxy):
    data = csv_like(3 * SMALL, seed=2)
    message_id = proxied_sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL, allow_chunking=False
    )
    assert chunk_ranges(proxy) == ["1:1"] and body_sizes(proxy)[0] <= SMALL
    # Three segments, compressed separately, joined into one gzip stream the recipient reads.
    assert received_sha256(recipient, message_id)[1] == hashlib.sha256(data).hexdigest()


def test_chunks_come_from_the_spool_then_from_the_source_and_each_fits(
    proxied_sender, recipient, proxy
):
    # Compressible first (several segments fit in the spool before the limit is passed), then
    # random: the later chunks are compressed as they go out.
    data = csv_like(4 * SMALL, seed=3) + os.urandom(5 * SMALL)
    message_id = proxied_sender.send("X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL)
    total = -(-len(data) // max_chunk_size(SMALL))
    assert chunk_ranges(proxy) == [f"{k}:{total}" for k in range(1, total + 1)]
    assert max(body_sizes(proxy)) <= SMALL
    info, received = received_sha256(recipient, message_id)
    assert received == hashlib.sha256(data).hexdigest() and info.total_chunks == total


def test_an_uncompressed_send_obeys_the_same_limit(proxied_sender, recipient, proxy):
    data = os.urandom(5 * SMALL // 2)
    message_id = proxied_sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, compress=False, max_request_bytes=SMALL
    )
    assert chunk_ranges(proxy) == ["1:3", "2:3", "3:3"]
    assert body_sizes(proxy) == [SMALL, SMALL, SMALL // 2]
    assert all("content-encoding" not in request.headers for request in proxy.posts())
    assert received_sha256(recipient, message_id)[1] == hashlib.sha256(data).hexdigest()


def test_a_refusal_at_a_small_limit_sends_nothing(proxied_sender, proxy):
    data = os.urandom(2 * SMALL)
    with pytest.raises(MeshChunkingNotAllowed, match="200,000 bytes, more than 100,000"):
        proxied_sender.send(
            "X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL, allow_chunking=False
        )
    with pytest.raises(MeshChunkingNotAllowed, match="uncompressed"):
        proxied_sender.send(
            "X26ABC2",
            "TEST_WORKFLOW",
            data,
            compress=False,
            max_request_bytes=SMALL,
            allow_chunking=False,
        )
    assert proxy.requests == []


def test_a_chunked_send_resumes_with_the_same_layout(proxied_sender, recipient, proxy, tmp_path):
    data = os.urandom(5 * SMALL)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    saved = {}

    def crash_after_chunk_two(chunk, total, message_id):
        saved.update(resume_from=(message_id, chunk, total))
        if chunk == 2:
            raise KeyboardInterrupt("worker killed")

    with pytest.raises(KeyboardInterrupt):
        send_file(proxied_sender, path, max_request_bytes=SMALL, on_progress=crash_after_chunk_two)
    message_id, done, total = saved["resume_from"]
    assert (done, total) == (2, 6)
    resumed = send_file(
        proxied_sender,
        path,
        max_request_bytes=SMALL,
        resume_from=saved["resume_from"],
        on_progress=lambda *a: saved.update(last=a),
    )
    assert resumed == message_id and saved["last"] == (6, 6, message_id)
    assert chunk_ranges(proxy) == [f"{k}:6" for k in range(1, 7)], "chunks 1 and 2 went once"
    assert max(body_sizes(proxy)) <= SMALL
    assert received_sha256(recipient, message_id)[1] == hashlib.sha256(data).hexdigest()


def test_a_resume_of_a_message_that_went_whole_sends_no_chunk(proxied_sender, recipient, proxy):
    data = csv_like(3 * SMALL, seed=4)  # over the safe chunk size, but fits compressed
    message_id = proxied_sender.send("X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL)
    assert chunk_ranges(proxy) == ["1:1"]
    # A caller that kept (id, 1) only: MESH says the message is complete, so nothing is sent.
    again = proxied_sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL, resume_from=(message_id, 1)
    )
    assert again == message_id and len(proxy.posts()) == 1
    assert [request.method for request in proxy.requests] == ["POST", "GET"]
    # One that kept (id, 1, 1) needs no request at all.
    proxied_sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, max_request_bytes=SMALL, resume_from=(message_id, 1, 1)
    )
    assert len(proxy.requests) == 2
    assert received_sha256(recipient, message_id)[1] == hashlib.sha256(data).hexdigest()


def test_a_fixed_chunk_size_above_the_safe_size_is_checked_chunk_by_chunk(
    proxied_sender, recipient, proxy
):
    # 150,000 raw bytes per chunk can exceed a 100,000-byte limit; compressible chunks do not.
    data = csv_like(4 * SMALL, seed=5)
    message_id = proxied_sender.send(
        "X26ABC2", "TEST_WORKFLOW", data, chunk_size=150_000, max_request_bytes=SMALL
    )
    assert chunk_ranges(proxy) == ["1:3", "2:3", "3:3"] and max(body_sizes(proxy)) <= SMALL
    assert received_sha256(recipient, message_id)[1] == hashlib.sha256(data).hexdigest()
    # Random chunks of that size cannot fit: refused before their request is made.
    with pytest.raises(MeshValidationError, match="chunk 1 of 2 .* more than 100,000 bytes"):
        proxied_sender.send(
            "X26ABC2",
            "TEST_WORKFLOW",
            os.urandom(2 * SMALL),
            chunk_size=150_000,
            max_request_bytes=SMALL,
        )
    assert len(proxy.posts()) == 3
