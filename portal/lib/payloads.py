"""Durable payload files: written to a temporary name, fsynced, then renamed into place.

Payload names are generated (`in/2026/11/<uuid>`), never taken from MESH or a user's filename, so a
hostile filename can never choose a filesystem path.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.files.storage import storages
from django.utils import timezone

COPY_BLOCK = 1024 * 1024


@dataclass
class StoredPayload:
    name: str
    size: int
    sha256: str


class HashingWriter:
    """A binary file wrapper that counts and hashes what is written through it."""

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


def storage():
    return storages["payloads"]


def root() -> Path:
    return Path(storage().location)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_name(prefix: str) -> str:
    now = timezone.now()
    return f"{prefix}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}"


@contextmanager
def durable_writer(prefix: str) -> Iterator[tuple[HashingWriter, list[StoredPayload]]]:
    """Yield a writer; on a clean exit the file is fsynced and renamed into storage.

    The stored payload is appended to the yielded list. On an exception the partial file is removed.
    """
    name = _new_name(prefix)
    final = root() / name
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(final.name + ".part")
    result: list[StoredPayload] = []
    try:
        with open(temporary, "wb") as handle:
            os.chmod(temporary, 0o600)
            writer = HashingWriter(handle)
            yield writer, result
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_dir(final.parent)
        result.append(StoredPayload(name=name, size=writer.size, sha256=writer.sha256))
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def store_stream(source: BinaryIO, prefix: str) -> StoredPayload:
    """Copy a readable binary stream into durable storage, in bounded memory."""
    with durable_writer(prefix) as (writer, result):
        while block := source.read(COPY_BLOCK):
            writer.write(block)
    return result[0]


def open_payload(name: str) -> BinaryIO:
    return storage().open(name, "rb")


def delete_payload(name: str) -> None:
    if name:
        storage().delete(name)
