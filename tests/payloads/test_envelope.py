"""The envelope format: segments authenticated one by one, keys wrapped and re-wrapped."""

from __future__ import annotations

import io
import os

import pytest
from cryptography.fernet import Fernet

from portal.lib import envelope
from portal.lib.envelope import (
    DecryptingReader,
    EncryptingWriter,
    PayloadKeyUnavailable,
    PayloadTampered,
)

SEGMENT = 64


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return settings


def encrypt(data: bytes, segment: int = SEGMENT, block: int = 50) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, segment_size=segment)
    for start in range(0, len(data), block):
        writer.write(data[start : start + block])
    writer.close()
    return sink.getvalue()


def decrypt(blob: bytes) -> bytes:
    return DecryptingReader(io.BytesIO(blob)).read()


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 1000])
def test_it_round_trips_every_size_around_the_segment_boundary(size):
    data = os.urandom(size)
    blob = encrypt(data)
    assert decrypt(blob) == data
    segments = max(1, -(-size // SEGMENT))
    header = len(envelope.Header.read_from(io.BytesIO(blob)))
    assert len(blob) == header + size + 16 * segments


def test_it_writes_none_of_the_plaintext_and_a_fresh_key_each_time():
    data = b"NHS number 943 476 5919, Jane Example " * 20
    first, second = encrypt(data), encrypt(data)
    assert b"943 476" not in first and b"Jane" not in first
    assert first[100:] != second[100:]


def test_it_reads_any_range_after_seeking():
    data = os.urandom(1000)
    reader = DecryptingReader(io.BytesIO(encrypt(data)))
    assert reader.seek(0, io.SEEK_END) == 1000
    for start, length in [(0, 10), (60, 10), (63, 130), (999, 5), (500, 0)]:
        reader.seek(start)
        assert reader.read(length) == data[start : start + length]


def flipped(blob: bytes, at: int) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 0x01
    return bytes(changed)


def test_a_flipped_byte_in_any_segment_is_refused_before_any_byte_of_that_segment():
    data = os.urandom(5 * SEGMENT)
    blob = encrypt(data)
    header = len(envelope.Header.read_from(io.BytesIO(blob)))
    stride = SEGMENT + 16
    for segment in range(5):
        reader_blob = flipped(blob, header + segment * stride + 7)
        if segment == 0:
            with pytest.raises(PayloadTampered):
                DecryptingReader(io.BytesIO(reader_blob))
            continue
        reader = DecryptingReader(io.BytesIO(reader_blob))
        out = bytearray()
        with pytest.raises(PayloadTampered, match=f"segment {segment + 1} of 5"):
            while block := reader.read(16):
                out += block
        # Everything handed on came from the segments before the bad one, and was genuine.
        assert bytes(out) == data[: segment * SEGMENT]


def test_a_flipped_byte_in_the_header_is_refused():
    blob = encrypt(b"x" * 100)
    for at in (9, 14, 20):  # segment size, nonce prefix, wrapper id length
        with pytest.raises(envelope.PayloadUnreadable):
            decrypt(flipped(blob, at))


def test_a_payload_cut_short_at_a_segment_boundary_or_extended_is_refused():
    data = os.urandom(3 * SEGMENT + 5)
    blob = encrypt(data)
    header = len(envelope.Header.read_from(io.BytesIO(blob)))
    stride = SEGMENT + 16
    with pytest.raises(PayloadTampered):
        decrypt(blob[: header + 2 * stride])  # the last segment dropped
    with pytest.raises(PayloadTampered):
        decrypt(blob[:-3])  # cut inside the last tag
    with pytest.raises(PayloadTampered):
        decrypt(blob + blob[header : header + stride])  # a segment appended


def test_swapped_segments_are_refused():
    blob = encrypt(os.urandom(3 * SEGMENT))
    header = len(envelope.Header.read_from(io.BytesIO(blob)))
    stride = SEGMENT + 16
    one, two = blob[header : header + stride], blob[header + stride : header + 2 * stride]
    swapped = blob[:header] + two + one + blob[header + 2 * stride :]
    with pytest.raises(PayloadTampered, match="segment 1 of 3"):
        decrypt(swapped)


def test_rotation_rewraps_the_key_and_leaves_every_segment_as_it_was(settings):
    data = os.urandom(500)
    blob = encrypt(data)
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    source = io.BytesIO(blob)
    old_header, new_header = envelope.rewrapped_header(source)
    rewrapped = new_header + blob[len(old_header) :]
    assert blob.endswith(rewrapped[len(new_header) :])  # segments byte for byte
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key removed
    assert decrypt(rewrapped) == data
    assert envelope.rewrapped_header(io.BytesIO(rewrapped)) is None  # already current
    with pytest.raises(PayloadKeyUnavailable, match="FIELD_ENCRYPTION_KEYS"):
        decrypt(blob)


def test_a_payload_whose_key_wrapper_differs_is_refused_with_a_clear_reason(settings):
    class Other(envelope.FernetKeyWrapper):
        id = "kms"

    blob = encrypt(b"hello")
    with pytest.raises(PayloadKeyUnavailable, match="'fernet', but this portal uses 'kms'"):
        DecryptingReader(io.BytesIO(blob), wrapper=Other())


def test_writing_whole_blocks_holds_one_segment_at_most():
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, segment_size=SEGMENT)
    writer.write(os.urandom(10 * SEGMENT + 3))
    assert len(writer._buffer) <= SEGMENT
    writer.close()
