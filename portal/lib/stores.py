"""Where payload bytes live: a local (or shared POSIX) directory, or S3-compatible object storage.

Chosen by the `PAYLOAD_STORE` setting, a URL like `DATABASE_URL`:

- `file:///var/lib/neomesh/payloads` (the default: `PAYLOAD_ROOT`): atomic writes (temporary
  name, fsync, rename, fsync of the directory), files mode 0600.
- `s3://bucket/prefix?endpoint_url=https://...&region=eu-west-2&sse=aws:kms&sse_kms_key_id=...`:
  streamed multipart uploads, ranged reads; credentials from the usual AWS chain (environment,
  instance profile). `sse`/`sse_kms_key_id` are passed to S3 as server-side encryption settings.

A store only moves bytes: encryption is `portal.lib.payloads`' job, above it. Names are generated
by the portal (`in/2026/11/<uuid>`), never taken from MESH or a person.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def check_name(name: str) -> str:
    """Refuse a name that could leave the store (`..`, absolute, odd characters)."""
    if not name or len(name) > 300 or not _NAME_RE.match(name) or ".." in name.split("/"):
        raise ValueError(f"not a payload name: {name!r}")
    return name


class Store:
    url = ""

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A binary writer; the object appears under `name` only on a clean exit, whole."""
        raise NotImplementedError
        yield

    def open(self, name: str) -> BinaryIO:
        """A seekable binary reader of known size. FileNotFoundError when there is none."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def names(self) -> Iterator[str]:
        """Every stored payload name, in order."""
        raise NotImplementedError


class LocalStore(Store):
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.url = self.root.as_uri()

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        final = self.path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(final.name + ".part")
        try:
            with open(temporary, "wb") as handle:
                os.chmod(temporary, 0o600)
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            _fsync_dir(final.parent)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def open(self, name: str) -> BinaryIO:
        return open(self.path(name), "rb")

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for directory, subdirs, files in os.walk(self.root):
            subdirs.sort()
            for filename in sorted(files):
                if filename.endswith(".part"):
                    continue
                name = Path(directory, filename).relative_to(self.root).as_posix()
                if _NAME_RE.match(name):
                    yield name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store(Store):
    PART = 8 * 1024 * 1024  # S3's smallest part is 5 MiB; one part is the memory an upload holds

    def __init__(self, url: str):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise ImproperlyConfigured("PAYLOAD_STORE s3:// needs a bucket: s3://bucket/prefix")
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = unquote(parsed.path).strip("/")
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        self._client_options = {
            "endpoint_url": options.pop("endpoint_url", None),
            "region_name": options.pop("region", None),
        }
        self._extra = {}
        if sse := options.pop("sse", None):
            self._extra["ServerSideEncryption"] = sse
        if kms_key := options.pop("sse_kms_key_id", None):
            self._extra["SSEKMSKeyId"] = kms_key
        if options:
            raise ImproperlyConfigured(
                f"PAYLOAD_STORE: unknown option(s) {', '.join(sorted(options))} (known: "
                "endpoint_url, region, sse, sse_kms_key_id)"
            )
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                **{k: v for k, v in self._client_options.items() if v},
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._client

    def key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        upload = _S3Upload(self, self.key(name))
        try:
            yield upload
            upload.finish()
        except BaseException:
            upload.abort()
            raise

    def open(self, name: str) -> BinaryIO:
        return _S3Reader(self, self.key(name))

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except self.client.exceptions.ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def names(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if _NAME_RE.match(name):
                    yield name


def _not_found(exc) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class _S3Upload(io.RawIOBase):
    """Buffers one part at a time; a payload smaller than a part is one PUT."""

    def __init__(self, store: S3Store, key: str):
        super().__init__()
        self._store, self._key = store, key
        self._buffer = bytearray()
        self._upload_id = None
        self._parts: list[dict] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        while len(self._buffer) >= self._store.PART:
            self._send_part(bytes(self._buffer[: self._store.PART]))
            del self._buffer[: self._store.PART]
        return len(data)

    def _send_part(self, body: bytes) -> None:
        client = self._store.client
        if self._upload_id is None:
            created = client.create_multipart_upload(
                Bucket=self._store.bucket, Key=self._key, **self._store._extra
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = client.upload_part(
            Bucket=self._store.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def finish(self) -> None:
        client = self._store.client
        if self._upload_id is None:
            client.put_object(
                Bucket=self._store.bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                **self._store._extra,
            )
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer = bytearray()

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:
            try:
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id
                )
            except Exception:  # noqa: BLE001 - the lifecycle rule removes a part-upload left behind
                pass


class _S3Reader(io.RawIOBase):
    """A seekable reader over one object: a ranged GET streamed from the current position."""

    def __init__(self, store: S3Store, key: str):
        super().__init__()
        self._store, self._key = store, key
        client = store.client
        try:
            head = client.head_object(Bucket=store.bucket, Key=key)
        except client.exceptions.ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(f"no payload object {key}") from None
            raise
        self.size = head["ContentLength"]
        self._etag = head.get("ETag")
        self._position = 0
        self._body = None
        self._body_position = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self.size:
            return 0
        if self._body is None or self._body_position != self._position:
            self._close_body()
            extra = {"IfMatch": self._etag} if self._etag else {}
            got = self._store.client.get_object(
                Bucket=self._store.bucket, Key=self._key, Range=f"bytes={self._position}-", **extra
            )
            self._body, self._body_position = got["Body"], self._position
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        if not data:
            self._close_body()
            raise OSError(f"payload object {self._key} ended early at byte {self._position}")
        view[: len(data)] = data
        self._position += len(data)
        self._body_position = self._position
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._position
        out = bytearray()
        while len(out) < size and self._position < self.size:
            chunk = bytearray(min(size - len(out), 1024 * 1024))
            count = self.readinto(chunk)
            out += chunk[:count]
        return bytes(out)

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
        self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()


def from_url(url: str) -> Store:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(unquote(parsed.path))
    if parsed.scheme == "s3":
        return S3Store(url)
    raise ImproperlyConfigured(
        f"PAYLOAD_STORE must be a file:// or s3:// URL, not {parsed.scheme or url!r}"
    )


@lru_cache(maxsize=8)
def from_url_cached(url: str) -> Store:
    """One store object (and so one S3 client) per URL."""
    return from_url(url)
