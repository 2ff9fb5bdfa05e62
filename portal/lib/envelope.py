"""Envelope encryption of payloads: AES-256-GCM in authenticated segments, a fresh key per payload.

An encrypted payload is a header and then segments::

    header   = MAGIC(8) | version(1) | segment_size(4) | nonce_prefix(7)
               | wrapper_id_len(1) | wrapper_id | wrapped_key_len(2) | wrapped_key
    segment  = AES-256-GCM(data_key, nonce_prefix | index(4) | final(1), plaintext, aad=header[:20])

Every segment but the last holds exactly `segment_size` plaintext bytes; the last holds 0 to
`segment_size` (0 only for an empty payload). The segment's index and whether it is the last are in
its nonce, so a segment moved, dropped, or a payload cut short at a segment boundary fails its tag.
A segment is decrypted whole and its tag checked before any byte of it is handed on.

The data key is wrapped by a `KeyWrapper` (setting `PAYLOAD_KEY_WRAPPER`, a dotted path; the
default wraps with `FIELD_ENCRYPTION_KEYS`, as secrets are). A KMS sits behind the same three
methods. Rotating keys re-wraps the data key in the header; the segments are copied unchanged.
"""

from __future__ import annotations

import io
import os
import struct
from functools import lru_cache
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils.module_loading import import_string

MAGIC = b"NMESHENC"
VERSION = 1
TAG = 16
NONCE_PREFIX = 7
DEFAULT_SEGMENT = 256 * 1024  # ~1 MiB of memory in flight; per-call costs negligible
MAX_SEGMENT = 64 * 1024 * 1024
_FIXED = struct.Struct(">8sBI7s")  # magic, version, segment size, nonce prefix: the segments' AAD


class PayloadUnreadable(Exception):
    """An encrypted payload that cannot be read: tampered with, cut short, or its key is unknown."""


class PayloadTampered(PayloadUnreadable):
    """The stored bytes are not what was written: altered, cut short, reordered. No retry helps."""


class PayloadKeyUnavailable(PayloadUnreadable):
    """The payload's data key cannot be unwrapped with the configured keys (a configuration fault)."""


# --- key wrapping -------------------------------------------------------------------------------


class KeyWrapper:
    """Wraps and unwraps data keys. A KMS-backed wrapper implements the same three methods."""

    id = "base"

    def wrap(self, data_key: bytes) -> bytes:
        raise NotImplementedError

    def unwrap(self, wrapped: bytes) -> bytes:
        raise NotImplementedError

    def rewrap(self, wrapped: bytes) -> bytes | None:
        """The data key wrapped by the newest key, or None when it already is."""
        raise NotImplementedError


class FernetKeyWrapper(KeyWrapper):
    """Data keys wrapped with `FIELD_ENCRYPTION_KEYS` (newest first), as stored secrets are."""

    id = "fernet"

    def wrap(self, data_key: bytes) -> bytes:
        from . import crypto

        return crypto.fernet().encrypt(data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        from . import crypto

        try:
            return crypto.fernet().decrypt(wrapped)
        except InvalidToken as exc:
            raise PayloadKeyUnavailable(
                "The payload's key cannot be unwrapped: is FIELD_ENCRYPTION_KEYS missing the key "
                "it was stored under?"
            ) from exc

    def rewrap(self, wrapped: bytes) -> bytes | None:
        from . import crypto

        newest = settings.FIELD_ENCRYPTION_KEYS[0]
        try:
            Fernet(newest.encode() if isinstance(newest, str) else newest).decrypt(wrapped)
            return None
        except InvalidToken:
            pass
        try:
            return crypto.fernet().rotate(wrapped)
        except InvalidToken as exc:
            raise PayloadKeyUnavailable(
                "The payload's key cannot be unwrapped with any of FIELD_ENCRYPTION_KEYS."
            ) from exc


@lru_cache(maxsize=4)
def _wrapper(path: str) -> KeyWrapper:
    return import_string(path)()


def key_wrapper() -> KeyWrapper:
    return _wrapper(
        getattr(settings, "PAYLOAD_KEY_WRAPPER", "portal.lib.envelope.FernetKeyWrapper")
    )


# --- header ---------------------------------------------------------------------------------------


class Header:
    def __init__(self, segment_size: int, nonce_prefix: bytes, wrapper_id: str, wrapped: bytes):
        self.segment_size = segment_size
        self.nonce_prefix = nonce_prefix
        self.wrapper_id = wrapper_id
        self.wrapped = wrapped

    @property
    def aad(self) -> bytes:
        return _FIXED.pack(MAGIC, VERSION, self.segment_size, self.nonce_prefix)

    def to_bytes(self) -> bytes:
        wid = self.wrapper_id.encode("ascii")
        return (
            self.aad + bytes([len(wid)]) + wid + struct.pack(">H", len(self.wrapped)) + self.wrapped
        )

    def __len__(self) -> int:
        return len(self.to_bytes())

    @classmethod
    def read_from(cls, source: BinaryIO) -> Header:
        fixed = _read_exactly(source, _FIXED.size)
        magic, version, segment_size, prefix = _FIXED.unpack(fixed)
        if magic != MAGIC:
            raise PayloadUnreadable("not an encrypted payload")
        if version != VERSION:
            raise PayloadUnreadable(f"encrypted payload format {version} is not known here")
        if not 0 < segment_size <= MAX_SEGMENT:
            raise PayloadTampered("encrypted payload header is damaged (segment size)")
        wid_len = _read_exactly(source, 1)[0]
        wrapper_id = _read_exactly(source, wid_len).decode("ascii", "replace")
        (wrapped_len,) = struct.unpack(">H", _read_exactly(source, 2))
        wrapped = _read_exactly(source, wrapped_len)
        return cls(segment_size, prefix, wrapper_id, wrapped)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    while len(data) < size:
        more = source.read(size - len(data))
        if not more:
            raise PayloadTampered("encrypted payload is cut short")
        data += more
    return data


def is_encrypted(prefix: bytes) -> bool:
    """Does a stored object starting with these bytes hold an encrypted payload?"""
    return prefix[: len(MAGIC)] == MAGIC


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if final else 0)


# --- writing --------------------------------------------------------------------------------------


class EncryptingWriter(io.RawIOBase):
    """Encrypts what is written through it into `sink`, one segment at a time.

    Holds at most one segment (plus the block being written) in memory. `close()` writes the final
    segment; it does not close `sink`.
    """

    def __init__(self, sink: BinaryIO, *, segment_size: int | None = None, wrapper=None):
        super().__init__()
        self._sink = sink
        self._segment = segment_size or getattr(settings, "PAYLOAD_SEGMENT_BYTES", DEFAULT_SEGMENT)
        wrapper = wrapper or key_wrapper()
        data_key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(data_key)
        wrapped = wrapper.wrap(data_key)
        self.header = Header(self._segment, os.urandom(NONCE_PREFIX), wrapper.id, wrapped)
        self._aad = self.header.aad
        self._buffer = bytearray()
        self._index = 0
        sink.write(self.header.to_bytes())

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size, offset, segment = len(view), 0, self._segment
        while offset < size:
            if len(self._buffer) == segment:  # a full segment, and more follows: not the last
                self._emit(self._buffer, final=False)
                self._buffer = bytearray()
            if not self._buffer and size - offset > segment:
                # A whole segment straight from the caller's block, when more follows it.
                self._emit(view[offset : offset + segment], final=False)
                offset += segment
                continue
            take = min(segment - len(self._buffer), size - offset)
            self._buffer += view[offset : offset + take]
            offset += take
        return size

    def _emit(self, plaintext, *, final: bool) -> None:
        nonce = _nonce(self.header.nonce_prefix, self._index, final)
        self._sink.write(self._aead.encrypt(nonce, plaintext, self._aad))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(self._buffer, final=True)
            self._buffer = bytearray()
        super().close()


# --- reading --------------------------------------------------------------------------------------


class DecryptingReader(io.RawIOBase):
    """A seekable, read-only plaintext view of an encrypted payload in `source`.

    `source` must be seekable with a known size (a local file or the object store's ranged
    reader). A segment is read and authenticated whole before any byte of it is returned.
    """

    def __init__(self, source: BinaryIO, *, wrapper=None, header: Header | None = None):
        super().__init__()
        self._source = source
        source.seek(0)
        self.header = header or Header.read_from(source)
        wrapper = wrapper or key_wrapper()
        if self.header.wrapper_id != wrapper.id:
            raise PayloadKeyUnavailable(
                f"the payload's key is wrapped by '{self.header.wrapper_id}', but this portal uses "
                f"'{wrapper.id}' (PAYLOAD_KEY_WRAPPER)"
            )
        self._aead = AESGCM(wrapper.unwrap(self.header.wrapped))
        self._aad = self.header.aad
        self._start = len(self.header)
        body = source.seek(0, io.SEEK_END) - self._start
        stride = self.header.segment_size + TAG
        self._segments = max(1, -(-body // stride))
        last = body - (self._segments - 1) * stride
        if last < TAG:
            raise PayloadTampered(
                "the encrypted payload is cut short (its last segment is incomplete)"
            )
        self.size = body - TAG * self._segments
        self._position = 0
        self._cached_index = -1
        self._cached = b""
        self._source_at = -1
        self._segment(0)  # a payload of one segment is refused here, before it is opened

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def _segment(self, index: int) -> bytes:
        if index != self._cached_index:
            stride = self.header.segment_size + TAG
            at = self._start + index * stride
            if at != self._source_at:
                self._source.seek(at)
            ciphertext = _read_exactly(self._source, min(stride, self._body_left(index)))
            self._source_at = at + len(ciphertext)
            final = index == self._segments - 1
            try:
                plaintext = self._aead.decrypt(
                    _nonce(self.header.nonce_prefix, index, final), ciphertext, self._aad
                )
            except InvalidTag:
                raise PayloadTampered(
                    f"the encrypted payload was altered, cut short or reordered (segment {index + 1} "
                    f"of {self._segments} fails its check): refused"
                ) from None
            if not final and len(plaintext) != self.header.segment_size:
                raise PayloadTampered("the encrypted payload's segments are malformed")
            self._cached_index, self._cached = index, plaintext
        return self._cached

    def _body_left(self, index: int) -> int:
        stride = self.header.segment_size + TAG
        return self.size + TAG * self._segments - index * stride

    def readinto(self, buffer) -> int:
        if self._position >= self.size:
            return 0
        view = memoryview(buffer).cast("B")
        written = 0
        segment_size = self.header.segment_size
        while written < len(view) and self._position < self.size:
            index, offset = divmod(self._position, segment_size)
            plaintext = self._segment(index)
            take = min(len(view) - written, len(plaintext) - offset)
            view[written : written + take] = plaintext[offset : offset + take]
            written += take
            self._position += take
        return written

    def read(self, size: int = -1) -> bytes:
        remaining = max(0, self.size - self._position)
        if size is None or size < 0 or size > remaining:
            size = remaining
        parts = []
        segment_size = self.header.segment_size
        while size > 0:
            index, offset = divmod(self._position, segment_size)
            plaintext = self._segment(index)
            take = min(size, len(plaintext) - offset)
            whole = offset == 0 and take == len(plaintext)
            parts.append(plaintext if whole else plaintext[offset : offset + take])
            self._position += take
            size -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def rewrapped_header(source: BinaryIO, *, wrapper=None) -> tuple[Header, bytes] | None:
    """(header as stored, new header bytes) when the data key needs re-wrapping, else None."""
    source.seek(0)
    header = Header.read_from(source)
    wrapper = wrapper or key_wrapper()
    wrapped = wrapper.rewrap(header.wrapped)
    if wrapped is None:
        return None
    return header, Header(header.segment_size, header.nonce_prefix, wrapper.id, wrapped).to_bytes()
