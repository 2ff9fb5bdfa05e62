"""Receiving: HEAD, streaming download of every chunk, acknowledge (part of MeshClient)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from requests import RequestException
from urllib3.exceptions import HTTPError as Urllib3Error

from . import validation
from .decoding import copy_response
from .errors import MeshProtocolError
from .limits import Deadline, DownloadLimits, SizeGuard
from .models import MessageInfo, message_info_from_headers
from .retry import RetryPolicy, error_from_exception

if TYPE_CHECKING:
    import requests

# A body breaking off mid-way surfaces as one of these (requests, urllib3 or socket level).
_NETWORK_ERRORS = (RequestException, Urllib3Error, ConnectionError, TimeoutError, ssl.SSLError)


class ReceiveMixin:
    """The receive half of MeshClient; relies on its ``_request`` seam and settings."""

    base_url: str
    retry_policy: RetryPolicy
    download_limits: DownloadLimits
    deadline: Callable[..., Deadline]
    # Provided by MeshClient.
    _request: Callable[..., requests.Response]
    _mailbox_url: Callable[..., str]
    _sleep: Callable[[float], None]

    def head(self, message_id: str) -> MessageInfo:
        """A message's metadata without its body (``HEAD /inbox/{id}``)."""
        url = self._mailbox_url("inbox", validation.message_id(message_id))
        response = self._request("HEAD", url)
        return message_info_from_headers(message_id, response.headers)

    def download(
        self, message_id: str, into: IO[bytes], *, limits: DownloadLimits | None = None
    ) -> MessageInfo:
        """Stream a whole message (every chunk, transport gzip undone) into a binary file object.

        REPORT messages have no body: check ``info.message_type`` (or ``info.is_report``).
        When ``into`` is seekable, a chunk whose body breaks off mid-way is fetched again.
        ``limits`` (default: the client's ``download_limits``) bound the decoded size, per message
        and per chunk, the expansion ratio and the chunk count: ``MeshPayloadTooLarge`` is raised
        before anything past a limit is written (the caller discards what was written).
        """
        message_id = validation.message_id(message_id)
        limits = limits or self.download_limits
        guard = SizeGuard(limits, message_id)
        info, written = self._download_chunk(message_id, 1, into, guard)
        limits.check_chunks(info.total_chunks, message_id)
        for chunk_number in range(2, info.total_chunks + 1):
            chunk_info, size = self._download_chunk(message_id, chunk_number, into, guard)
            _check_chunk(chunk_info, info, chunk_number)
            written += size
        info.size = written
        return info

    def _download_chunk(
        self, message_id: str, chunk_number: int, into: IO[bytes], guard: SizeGuard
    ) -> tuple[MessageInfo, int]:
        parts = (
            ("inbox", message_id) if chunk_number == 1 else ("inbox", message_id, str(chunk_number))
        )
        start = _tell(into)
        attempt = 0
        while True:
            response = self._request("GET", self._mailbox_url(*parts), stream=True, ok=(200, 206))
            try:
                info = message_info_from_headers(message_id, response.headers)
                _check_identity(info, message_id, chunk_number)
                if chunk_number == 1:
                    guard.limits.check_chunks(info.total_chunks, message_id)
                with self.deadline().watch(response) as deadline:
                    return info, copy_response(response, into, guard, deadline)
            except _NETWORK_ERRORS as exc:  # not file errors: a full disk is not retried
                error = error_from_exception(
                    exc, creates_message=False, https=self.base_url.startswith("https:")
                )
                delay = self.retry_policy.delay(attempt, error) if start is not None else None
                if delay is None:
                    raise error from exc
                into.seek(start)
                into.truncate()
                guard.forget_chunk()
                self._sleep(delay)
                attempt += 1
            finally:
                response.close()

    def acknowledge(self, message_id: str) -> None:
        """Tell MESH the message is safely stored; only then does it leave the inbox."""
        url = self._mailbox_url(
            "inbox", validation.message_id(message_id), "status", "acknowledged"
        )
        self._request("PUT", url)


def _check_identity(info: MessageInfo, message_id: str, chunk_number: int) -> None:
    """The answer must be for the message and chunk asked for (MESH ids are case-insensitive)."""
    if info.message_id.strip().upper() != message_id.upper():
        raise MeshProtocolError(
            f"asked for message {message_id} (chunk {chunk_number}), MESH answered with "
            f"message {info.message_id[:100]!r}: refused",
            message_id=message_id,
        )
    if info.chunk_range is None or info.is_report:
        return
    number = (info.chunk_range.split(":", 1)[0] or "").strip()
    if number != str(chunk_number) or not 1 <= chunk_number <= info.total_chunks:
        raise MeshProtocolError(
            f"asked for chunk {chunk_number} of message {message_id}, MESH answered with chunk "
            f"range {info.chunk_range[:50]!r}: refused",
            message_id=message_id,
        )


def _check_chunk(chunk: MessageInfo, first: MessageInfo, chunk_number: int) -> None:
    if chunk.chunk_range is not None and chunk.total_chunks != first.total_chunks:
        raise MeshProtocolError(
            f"chunk {chunk_number} of message {first.message_id} says the message has "
            f"{chunk.total_chunks} chunks, chunk 1 said {first.total_chunks}: refused",
            message_id=first.message_id,
        )


def _tell(fileobj: IO[bytes]) -> int | None:
    try:
        return fileobj.tell() if fileobj.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None
