"""The payload API: every payload is written, read and removed through here.

Payloads go to the configured store (`portal.lib.stores`: a local directory by default, or
S3-compatible object storage) encrypted with a fresh key per payload (`portal.lib.envelope`),
unless `PAYLOAD_ENCRYPTION` is off. Reading detects the format by its header, so payloads stored
plain before encryption was turned on keep working (`manage.py encrypt_payloads` encrypts them).

Payload names are generated (`in/2026/11/<uuid>`), never taken from MESH or a user's filename, so a
hostile filename can never choose a path or key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from . import envelope, stores
from .envelope import PayloadKeyUnavailable, PayloadTampered, PayloadUnreadable

__all__ = [
    "PayloadKeyUnavailable",
    "PayloadTampered",
    "PayloadUnreadable",
    "StoredPayload",
    "durable_writer",
    "open_payload",
    "store_stream",
]

COPY_BLOCK = 1024 * 1024


@dataclass
class StoredPayload:
    name: str
    size: int
    sha256: str


class HashingWriter:
    """A binary file wrapper that counts and hashes what is written through it (the plaintext)."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def writable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@deconstructible(path="portal.lib.payloads.PayloadStorage")
class PayloadStorage(Storage):
    """Django's view of the payload store, so a FileField's `.open()` reads the plaintext.

    OPTIONS: `url` (a PAYLOAD_STORE URL) or `location` (a local directory).
    """

    def __init__(self, url: str = "", location: str = "", file_permissions_mode=None):
        self._url = url or (Path(location).resolve().as_uri() if location else "")

    @property
    def store(self) -> stores.Store:
        return stores.from_url_cached(self._url or Path(settings.PAYLOAD_ROOT).resolve().as_uri())

    @property
    def location(self) -> str:
        return str(getattr(self.store, "root", ""))

    def _open(self, name, mode="rb"):
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError(
                "payloads are written through portal.lib.payloads, not opened to write"
            )
        return File(open_payload(name), name=name)

    def _save(self, name, content):
        with _writer_for(name) as (writer, _result):
            for block in content.chunks(COPY_BLOCK):
                writer.write(block)
        return name

    def delete(self, name):
        if name:
            self.store.delete(name)

    def exists(self, name):
        return self.store.exists(name)

    def size(self, name):
        with open_payload(name) as handle:
            return handle.seek(0, 2)

    def url(self, name):
        raise NotImplementedError("payloads are downloaded through the portal, never by URL")


def storage() -> PayloadStorage:
    return storages["payloads"]


def store() -> stores.Store:
    return storage().store


def root() -> Path:
    """The local payload directory (a LocalStore only)."""
    return Path(store().root)


def encryption_on() -> bool:
    return getattr(settings, "PAYLOAD_ENCRYPTION", True)


def _new_name(prefix: str) -> str:
    now = timezone.now()
    return f"{prefix}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}"


@contextmanager
def _writer_for(name: str, *, encrypt: bool | None = None):
    encrypt = encryption_on() if encrypt is None else encrypt
    result: list[StoredPayload] = []
    with store().writer(name) as sink:
        target = envelope.EncryptingWriter(sink) if encrypt else sink
        writer = HashingWriter(target)
        yield writer, result
        if encrypt:
            target.close()
    result.append(StoredPayload(name=name, size=writer.size, sha256=writer.sha256))


@contextmanager
def durable_writer(prefix: str) -> Iterator[tuple[HashingWriter, list[StoredPayload]]]:
    """Yield a writer; on a clean exit the payload is stored whole (encrypted, durably).

    The stored payload (plaintext size and sha256) is appended to the yielded list. On an
    exception nothing is stored.
    """
    with _writer_for(_new_name(prefix)) as (writer, result):
        yield writer, result


def store_stream(source: BinaryIO, prefix: str) -> StoredPayload:
    """Copy a readable binary stream into durable storage, in bounded memory."""
    with durable_writer(prefix) as (writer, result):
        while block := source.read(COPY_BLOCK):
            writer.write(block)
    return result[0]


def open_payload(name: str) -> BinaryIO:
    """A seekable reader of the payload's plaintext. FileNotFoundError when it is not stored;
    PayloadUnreadable (on reading) when an encrypted payload was altered or its key is unknown."""
    handle = store().open(name)
    try:
        head = handle.read(len(envelope.MAGIC))
        handle.seek(0)
        if envelope.is_encrypted(head):
            return envelope.DecryptingReader(handle)
    except BaseException:
        handle.close()
        raise
    return handle


def is_stored_encrypted(name: str) -> bool:
    with store().open(name) as handle:
        return envelope.is_encrypted(handle.read(len(envelope.MAGIC)))


def delete_payload(name: str) -> None:
    if name:
        store().delete(name)


def encrypt_in_place(name: str) -> bool:
    """Encrypt one plain payload under the same name; False when it already is encrypted.

    The encrypted copy replaces the plain one atomically (a killed run leaves one or the other,
    whole); the plain bytes are hashed as they are encrypted and the stored copy is then read back
    and hashed again, so a copy that does not decrypt to the same bytes is reported.
    """
    with store().open(name) as source:
        if envelope.is_encrypted(source.read(len(envelope.MAGIC))):
            return False
        source.seek(0)
        with _writer_for(name, encrypt=True) as (writer, result):
            while block := source.read(COPY_BLOCK):
                writer.write(block)
    stored = result[0]
    if sha256_of(name) != stored.sha256:
        raise PayloadTampered(f"payload {name} did not read back as written after encrypting")
    return True


def rewrap(name: str) -> bool:
    """Re-wrap an encrypted payload's data key with the newest key; False when nothing to do.

    The segments are copied byte for byte, never decrypted; the new object replaces the old whole.
    """
    with store().open(name) as source:
        if not envelope.is_encrypted(source.read(len(envelope.MAGIC))):
            return False
        change = envelope.rewrapped_header(source)
        if change is None:
            return False
        old, new_header = change
        source.seek(len(old))
        with store().writer(name) as sink:
            sink.write(new_header)
            while block := source.read(COPY_BLOCK):
                sink.write(block)
    return True


def sha256_of(name: str) -> str:
    digest = hashlib.sha256()
    with open_payload(name) as handle:
        while block := handle.read(COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()
