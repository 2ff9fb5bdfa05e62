"""Sending: chunking, per-chunk gzip, in-order upload, progress and resume (part of MeshClient).

A payload of ``n = ceil(size / chunk_size)`` chunks goes out as ``POST /outbox`` (chunk 1, with
``mex-Chunk-Range: 1:n``, which creates the message and returns its id) then
``POST /outbox/{id}/{k}`` for k = 2..n, strictly in order. The raw data is split first and each
chunk gzipped on its own, as MESH requires.

Resuming: ``on_progress(k, n, message_id)`` runs after chunk k is accepted, so a caller can
persist the message id and k. After a crash, ``send(..., resume_from=(message_id, k))`` with the
same source and chunk size uploads chunks k+1..n only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import headers as mex
from . import validation
from .errors import MeshChunkLockedError, MeshProtocolError, MeshValidationError
from .gzipper import gzip_stream
from .payload import PIECE, Body, Payload

if TYPE_CHECKING:
    import requests

ProgressCallback = Callable[[int, int, str], None]
# Tracking statuses of a message whose upload finished (MESH API v2 tracking).
COMPLETE_STATUSES = {"accepted", "acknowledged"}


class SendMixin:
    """The send half of MeshClient; relies on its ``_request`` seam and settings."""

    chunk_size: int
    compress_level: int
    compress_workers: int
    # Provided by MeshClient.
    _request: Callable[..., requests.Response]
    _mailbox_url: Callable[..., str]
    _json: Callable[[requests.Response], Any]
    track: Callable[[str], Any]

    def send(
        self,
        to: str,
        workflow_id: str,
        data: bytes | Any,
        *,
        filename: str | None = None,
        local_id: str | None = None,
        subject: str | None = None,
        content_type: str | None = None,
        checksum: str | None = None,
        compress: bool = True,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
        resume_from: tuple[str, int] | None = None,
        partner_id: str | None = None,
        encrypted: bool | None = None,
        content_compressed: bool | None = None,
    ) -> str:
        """Send ``data`` (bytes, binary file, or iterable of bytes) to mailbox ``to``; returns the
        MESH message id. Large payloads are chunked automatically (``chunk_size`` raw bytes each).

        ``compress`` gzips each chunk in transit (``Content-Encoding``; MESH stores it gzipped and
        the recipient's client undoes it). ``content_compressed`` is different: it sets the
        ``mex-Content-Compressed`` flag, saying the payload itself is compressed by you.
        """
        metadata = mex.send_metadata(
            to=to,
            workflow_id=workflow_id,
            filename=filename,
            local_id=local_id,
            subject=subject,
            content_type=content_type,
            checksum=checksum,
            partner_id=partner_id,
            encrypted=encrypted,
            content_compressed=content_compressed,
        )
        size = self.chunk_size if chunk_size is None else validation.chunk_size(chunk_size)
        payload = Payload.from_data(data)
        try:
            payload.check_not_empty()
            total = payload.chunk_count(size)
            if resume_from is None:
                message_id = self._send_first_chunk(payload, metadata, total, size, compress)
                done = 1
                _notify(on_progress, 1, total, message_id)
            else:
                message_id, done = _check_resume(resume_from, total)
            for chunk_number in range(done + 1, total + 1):
                try:
                    self._upload_chunk(message_id, chunk_number, total, payload, size, compress)
                except MeshChunkLockedError:
                    # Finalised already: the last chunk arrived but its answer was lost (on a
                    # retry, or before a crash the caller resumes from). Done, if MESH agrees.
                    if not self._is_complete(message_id):
                        raise
                    _notify(on_progress, total, total, message_id)
                    return message_id
                _notify(on_progress, chunk_number, total, message_id)
            return message_id
        finally:
            payload.close()

    def send_chunk(
        self,
        message_id: str,
        chunk_number: int,
        total_chunks: int,
        data: bytes | Any,
        *,
        compress: bool = True,
    ) -> None:
        """Upload chunk ``chunk_number`` (2..n) of a message started by ``send``; for callers that
        cut their own chunks. ``compress`` must match what the first chunk used."""
        message_id = validation.message_id(message_id)
        if not (
            isinstance(chunk_number, int)
            and isinstance(total_chunks, int)
            and 2 <= chunk_number <= total_chunks
        ):
            raise MeshValidationError(
                f"chunk {chunk_number} of {total_chunks}: later chunks are numbered 2..n (use send() for chunk 1)"
            )
        payload = Payload.from_data(data)
        try:
            payload.check_not_empty()
            if payload.size > validation.MAX_CHUNK_SIZE:
                raise MeshValidationError(
                    f"a chunk may hold at most {validation.MAX_CHUNK_SIZE} bytes"
                )
            self._upload_chunk(
                message_id, chunk_number, total_chunks, payload, payload.size, compress, whole=True
            )
        finally:
            payload.close()

    # -- internals -------------------------------------------------------------------------

    def _is_complete(self, message_id: str) -> bool:
        """True when tracking says every chunk of the message arrived.

        A tracking failure propagates (a transient one means: try again later), so the 423 is
        reported only when MESH itself says the message is not complete.
        """
        return self.track(message_id).status in COMPLETE_STATUSES

    def _send_first_chunk(
        self, payload: Payload, metadata: dict[str, str], total: int, size: int, compress: bool
    ) -> str:
        response = self._request(
            "POST",
            self._mailbox_url("outbox"),
            headers=mex.first_chunk_headers(metadata, total, compress),
            body=lambda: self._chunk_body(payload, 1, size, compress),
            ok=(200, 202),
            creates_message=True,
        )
        document = self._json(response) or {}
        message_id = document.get("message_id") or document.get("messageID")
        if not message_id:
            raise MeshProtocolError(
                "MESH accepted the send but returned no message id; check the outbox before resending",
                status=response.status_code,
            )
        return str(message_id)

    def _upload_chunk(
        self,
        message_id: str,
        chunk_number: int,
        total: int,
        payload: Payload,
        size: int,
        compress: bool,
        whole: bool = False,
    ) -> requests.Response:
        # Safe to retry: re-uploading a chunk of a message still uploading replaces it.
        return self._request(
            "POST",
            self._mailbox_url("outbox", message_id, str(chunk_number)),
            headers=mex.later_chunk_headers(chunk_number, total, compress),
            body=lambda: self._chunk_body(payload, 1 if whole else chunk_number, size, compress),
            ok=(200, 202),
        )

    def _chunk_body(self, payload: Payload, chunk_number: int, size: int, compress: bool) -> Body:
        """A fresh streaming body for one chunk; called again for every attempt."""
        offset, length = payload.chunk_bounds(chunk_number, size)
        if not compress:
            return Body(lambda: payload.pieces(offset, length), length)
        # gzip output length is not known in advance, so the body goes out chunk-encoded; the
        # chunk size limit guarantees it stays under MESH's 100 MB per request (validation.py).
        # A pool of gzip threads only pays off for chunks of several pieces.
        workers = self.compress_workers if length > PIECE else 1
        return Body(
            lambda: gzip_stream(payload.pieces(offset, length), self.compress_level, workers),
            background=workers == 1,
        )


def _check_resume(resume_from: Any, total: int) -> tuple[str, int]:
    try:
        message_id, done = resume_from
    except (TypeError, ValueError):
        raise MeshValidationError("resume_from must be (message_id, last_chunk_accepted)") from None
    if isinstance(done, bool) or not isinstance(done, int) or not 1 <= done <= total:
        raise MeshValidationError(
            f"resume_from chunk {done!r} is not in 1..{total}: is this the same data and chunk_size?"
        )
    return validation.message_id(message_id), done


def _notify(
    on_progress: ProgressCallback | None, chunk_number: int, total: int, message_id: str
) -> None:
    if on_progress is not None:
        on_progress(chunk_number, total, message_id)
