"""A 1 GiB payload round-trips through the encrypted store in flat memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest

from portal.lib import payloads

pytestmark = [pytest.mark.django_db]

GIB = 1024 * 1024 * 1024


class Generated:
    """1 GiB of varied bytes, made as it is read: the test itself holds no copy."""

    def __init__(self, size: int):
        self.left = size
        self.block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
        self.digest = hashlib.sha256()
        self.counter = 0

    def read(self, size: int) -> bytes:
        take = min(size, self.left, len(self.block))
        if take <= 0:
            return b""
        self.counter += 1
        piece = self.counter.to_bytes(8, "big") + self.block[8:take]
        piece = piece[:take]
        self.left -= take
        self.digest.update(piece)
        return piece


def test_a_1_gib_payload_round_trips_with_flat_memory():
    source = Generated(GIB)
    tracemalloc.start()
    try:
        stored = payloads.store_stream(source, "out")
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with payloads.open_payload(stored.name) as handle:
            while block := handle.read(1024 * 1024):
                digest.update(block)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    on_disk = (payloads.root() / stored.name).stat().st_size
    assert stored.size == GIB and on_disk > GIB  # header and tags: encrypted, not plain
    assert digest.hexdigest() == stored.sha256 == source.digest.hexdigest()
    # A few segments and 1 MiB blocks in flight at most, whatever the payload's size.
    assert write_peak < 8 * 1024 * 1024, write_peak
    assert read_peak < 8 * 1024 * 1024, read_peak
