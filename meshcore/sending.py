"""Sending: chunking, per-chunk gzip, in-order upload, progress and resume (part of MeshClient).

A message goes in one request whenever it fits ``max_request_bytes`` after compression; otherwise
in ``n`` chunks, each of which fits (``meshcore.sizing`` decides, before any request, and explains
why the limit holds for any data). The chunks go out as ``POST /outbox`` (chunk 1, with
``mex-Chunk-Range: 1:n``, which creates the message and returns its id) then
``POST /outbox/{id}/{k}`` for k = 2..n, strictly in order. The raw data is split first and each
chunk gzipped on its own, as MESH requires.

Resuming: ``on_progress(k, n, message_id)`` runs after chunk k is accepted, so a caller can
persist the message id, k and n. After a crash, ``send(..., resume_from=(message_id, k, n))`` with
the same source, ``max_request_bytes`` and ``chunk_size`` uploads chunks k+1..n only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import headers as mex
from . import sizing, validation
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

    chunk_size: int | None
    max_request_bytes: int
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
        resume_from: tuple[str, int] | tuple[str, int, int] | None = None,
        partner_id: str | None = None,
        encrypted: bool | None = None,
        content_compressed: bool | None = None,
        max_request_bytes: int | None = None,
        allow_chunking: bool = True,
        demographic: bool = False,
    ) -> str:
        """Send ``data`` (bytes, binary file, or iterable of bytes) to mailbox ``to``; returns the
        MESH message id.

        One request whenever the (compressed) message fits ``max_request_bytes`` (the client's,
        20,000,000 by default); otherwise chunks that each fit. ``allow_chunking=False`` (a
        recipient that cannot take chunked messages) raises ``MeshChunkingNotAllowed`` instead,
        before anything is sent. ``chunk_size`` fixes the raw bytes per chunk instead, chunking
        any message larger than that (see ``meshcore.sizing``).

        ``compress`` gzips each request body in transit (``Content-Encoding``; MESH stores it
        gzipped and the recipient's client undoes it). ``content_compressed`` is different: it
        sets the ``mex-Content-Compressed`` flag, saying the payload itself is compressed by you.
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
            demographic=demographic,
        )
        options = self._plan_options(max_request_bytes, chunk_size, compress)
        resume = None if resume_from is None else _parse_resume(resume_from)
        payload = Payload.from_data(data)
        plan = None
        try:
            payload.check_not_empty()
            if resume is None:
                plan = sizing.plan_send(payload, allow_chunking=allow_chunking, **options)
                message_id = self._send_first_chunk(plan, metadata, compress)
                done = 1
                _notify(on_progress, 1, plan.total, message_id)
            else:
                message_id, done, total = resume
                if _resume_is_complete(done, total, allow_chunking):
                    return message_id
                plan = sizing.plan_resume(payload, **options)
                _check_resume_total(done, total, plan.total)
                if self._went_whole(resume, plan, options["chunk_size"]):
                    return message_id
            return self._send_later_chunks(message_id, done, plan, compress, on_progress)
        finally:
            if plan is not None:
                plan.close()
            payload.close()

    def send_chunk(
        self,
        message_id: str,
        chunk_number: int,
        total_chunks: int,
        data: bytes | Any,
        *,
        compress: bool = True,
        max_request_bytes: int | None = None,
    ) -> None:
        """Upload chunk ``chunk_number`` (2..n) of a message started by ``send``; for callers that
        cut their own chunks. ``compress`` must match what the first chunk used. A chunk that
        would be more than ``max_request_bytes`` on the wire raises MeshValidationError, unsent."""
        message_id = validation.message_id(message_id)
        if not (
            isinstance(chunk_number, int)
            and isinstance(total_chunks, int)
            and 2 <= chunk_number <= total_chunks
        ):
            raise MeshValidationError(
                f"chunk {chunk_number} of {total_chunks}: later chunks are numbered 2..n (use send() for chunk 1)"
            )
        options = self._plan_options(max_request_bytes, None, compress)
        payload = Payload.from_data(data)
        plan = None
        try:
            payload.check_not_empty()
            # The caller's chunk is one piece of a layout of their own: checked, never re-cut.
            plan = sizing.plan_resume(payload, **{**options, "chunk_size": payload.size})
            self._upload_chunk(message_id, chunk_number, total_chunks, plan, compress, local=1)
        finally:
            if plan is not None:
                plan.close()
            payload.close()

    # -- internals -------------------------------------------------------------------------

    def _plan_options(
        self, max_request_bytes: int | None, chunk_size: int | None, compress: bool
    ) -> dict[str, Any]:
        """The settings meshcore.sizing plans with: this call's, else the client's."""
        return {
            "max_request_bytes": self.max_request_bytes
            if max_request_bytes is None
            else validation.max_request_bytes(max_request_bytes),
            "chunk_size": self.chunk_size
            if chunk_size is None
            else validation.chunk_size(chunk_size),
            "compress": compress,
            "level": self.compress_level,
            "workers": self.compress_workers,
        }

    def _went_whole(
        self, resume: tuple[str, int, int | None], plan: sizing.Plan, chunk_size: int | None
    ) -> bool:
        """(id, 1) from a caller that did not keep n, with no chunk_size: the message may have
        gone in one request (it fitted compressed) or be a chunked one stopped after chunk 1.
        MESH knows which; asking costs one GET, uploading chunk 2 to a whole message far more."""
        message_id, done, total = resume
        if chunk_size is not None or total is not None or done != 1 or plan.total == 1:
            return False
        return self._is_complete(message_id)

    def _send_later_chunks(
        self,
        message_id: str,
        done: int,
        plan: sizing.Plan,
        compress: bool,
        on_progress: ProgressCallback | None,
    ) -> str:
        total = plan.total
        for chunk_number in range(done + 1, total + 1):
            try:
                self._upload_chunk(message_id, chunk_number, total, plan, compress)
            except MeshChunkLockedError:
                # Finalised already: the last chunk arrived but its answer was lost (on a
                # retry, or before a crash the caller resumes from). Done, if MESH agrees.
                if not self._is_complete(message_id):
                    raise
                _notify(on_progress, total, total, message_id)
                return message_id
            _notify(on_progress, chunk_number, total, message_id)
        return message_id

    def _is_complete(self, message_id: str) -> bool:
        """True when tracking says every chunk of the message arrived.

        A tracking failure propagates (a transient one means: try again later), so the 423 is
        reported only when MESH itself says the message is not complete.
        """
        return self.track(message_id).status in COMPLETE_STATUSES

    def _send_first_chunk(self, plan: sizing.Plan, metadata: dict[str, str], compress: bool) -> str:
        plan.prepare(1)
        response = self._request(
            "POST",
            self._mailbox_url("outbox"),
            headers=mex.first_chunk_headers(metadata, plan.total, compress),
            body=lambda: self._chunk_body(plan, 1, compress),
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
        plan: sizing.Plan,
        compress: bool,
        local: int | None = None,
    ) -> requests.Response:
        """Upload chunk ``chunk_number`` of ``total``: the plan's chunk ``local`` (default: the
        same number; send_chunk's plan holds just the one chunk)."""
        number = chunk_number if local is None else local
        plan.prepare(number)
        # Safe to retry: re-uploading a chunk of a message still uploading replaces it.
        return self._request(
            "POST",
            self._mailbox_url("outbox", message_id, str(chunk_number)),
            headers=mex.later_chunk_headers(chunk_number, total, compress),
            body=lambda: self._chunk_body(plan, number, compress),
            ok=(200, 202),
        )

    def _chunk_body(self, plan: sizing.Plan, chunk_number: int, compress: bool) -> Body:
        """A fresh streaming body for one chunk; called again for every attempt."""
        spooled = plan.spooled_body(chunk_number) if compress else None
        if spooled is not None:
            return spooled
        payload = plan.payload
        offset, length = plan.bounds(chunk_number)
        if not compress:
            return Body(lambda: payload.pieces(offset, length), length)
        # gzip output length is not known in advance, so the body goes out chunk-encoded; the
        # plan made sure it fits max_request_bytes (meshcore.sizing).
        # A pool of gzip threads only pays off for chunks of several pieces.
        workers = self.compress_workers if length > PIECE else 1
        return Body(
            lambda: gzip_stream(payload.pieces(offset, length), self.compress_level, workers),
            background=workers == 1,
        )


def _parse_resume(resume_from: Any) -> tuple[str, int, int | None]:
    """(message_id, last chunk accepted[, total chunks]) -> (id, done, total or None)."""
    if not isinstance(resume_from, tuple | list) or len(resume_from) not in (2, 3):
        raise MeshValidationError(
            "resume_from must be (message_id, last_chunk_accepted[, total_chunks])"
        )
    message_id, done, *rest = resume_from
    total = rest[0] if rest else None
    for value in (done, total):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MeshValidationError(f"resume_from chunk numbers must be ints, got {value!r}")
    if done < 1 or (total is not None and not done <= total):
        raise MeshValidationError(f"resume_from chunk {done!r} of {total!r} is impossible")
    return validation.message_id(message_id), done, total


def _resume_is_complete(done: int, total: int | None, allow_chunking: bool) -> bool:
    """Is a resumed message whole already, by the caller's own record?"""
    if total is not None and done == total:
        return True
    if not allow_chunking:
        # Such a message only ever goes in one request: having started, it is complete.
        if done != 1 or total not in (None, 1):
            raise MeshValidationError(
                f"resume_from says chunk {done} of {total or '?'}, but allow_chunking is False"
            )
        return True
    return False


def _check_resume_total(done: int, total: int | None, planned: int) -> None:
    if done > planned or total not in (None, planned):
        raise MeshValidationError(
            f"resume_from says chunk {done} of {total or '?'}, but this data cuts into {planned} "
            "chunks: is this the same data, chunk_size and max_request_bytes?"
        )


def _notify(
    on_progress: ProgressCallback | None, chunk_number: int, total: int, message_id: str
) -> None:
    if on_progress is not None:
        on_progress(chunk_number, total, message_id)
