"""Receiving: HEAD, streaming download of every chunk, acknowledge (part of MeshClient)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from requests import RequestException
from urllib3.exceptions import HTTPError as Urllib3Error

from . import validation
from .decoding import copy_response
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
    # Provided by MeshClient.
    _request: Callable[..., requests.Response]
    _mailbox_url: Callable[..., str]
    _sleep: Callable[[float], None]

    def head(self, message_id: str) -> MessageInfo:
        """A message's metadata without its body (``HEAD /inbox/{id}``)."""
        url = self._mailbox_url("inbox", validation.message_id(message_id))
        response = self._request("HEAD", url)
        return message_info_from_headers(message_id, response.headers)

    def download(self, message_id: str, into: IO[bytes]) -> MessageInfo:
        """Stream a whole message (every chunk, transport gzip undone) into a binary file object.

        REPORT messages have no body: check ``info.message_type`` (or ``info.is_report``).
        When ``into`` is seekable, a chunk whose body breaks off mid-way is fetched again.
        """
        message_id = validation.message_id(message_id)
        info, written = self._download_chunk(message_id, 1, into)
        for chunk_number in range(2, info.total_chunks + 1):
            written += self._download_chunk(message_id, chunk_number, into)[1]
        info.size = written
        return info

    def _download_chunk(
        self, message_id: str, chunk_number: int, into: IO[bytes]
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
                return info, copy_response(response, into)
            except _NETWORK_ERRORS as exc:  # not file errors: a full disk is not retried
                error = error_from_exception(
                    exc, creates_message=False, https=self.base_url.startswith("https:")
                )
                delay = self.retry_policy.delay(attempt, error) if start is not None else None
                if delay is None:
                    raise error from exc
                into.seek(start)
                into.truncate()
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


def _tell(fileobj: IO[bytes]) -> int | None:
    try:
        return fileobj.tell() if fileobj.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None
