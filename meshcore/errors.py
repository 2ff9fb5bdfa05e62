"""One exception hierarchy for everything that can go wrong talking to MESH.

Every error carries what MESH said (``status``, ``event``, ``code``, ``description``) and the
``message_id`` when known, and two properties a caller can branch on:

* ``is_transient``: the cause is probably temporary (network, server overload, rate limit).
* ``retryable``: repeating the *same call* is safe and may succeed. ``MeshSendOutcomeUnknown`` is
  transient but not retryable: the first POST may have created a message, so the caller must
  reconcile (tracking, local id) before sending again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_MAX_TEXT = 300


class MeshError(Exception):
    """Base class of every meshcore error."""

    transient = False

    def __init__(
        self,
        description: str | None = None,
        *,
        status: int | None = None,
        event: str | None = None,
        code: str | None = None,
        message_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.description = description or None
        self.status = status
        self.event = event or None
        self.code = code or None
        self.message_id = message_id or None
        self.retry_after = retry_after
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [self.description or type(self).__name__]
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.event or self.code:
            details.append(f"MESH {self.event or '?'}/{self.code or '?'}")
        if self.message_id:
            details.append(f"message {self.message_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    @property
    def is_transient(self) -> bool:
        return self.transient

    @property
    def retryable(self) -> bool:
        return self.transient


class MeshValidationError(MeshError, ValueError):
    """Bad input: rejected by meshcore before any HTTP, or by MESH with 400/422."""


class MeshPayloadTypeError(MeshValidationError, TypeError):
    """The payload is not bytes, a binary file or an iterable of bytes (e.g. a ``str``)."""


class MeshChunkingNotAllowed(MeshValidationError):
    """The message does not fit in one request and the recipient cannot take chunked messages
    (the MESH UI and old clients cannot). Raised before anything is sent."""

    def __init__(
        self,
        description: str | None = None,
        *,
        size: int | None = None,
        max_request_bytes: int | None = None,
        **details: object,
    ) -> None:
        self.size = size
        self.max_request_bytes = max_request_bytes
        super().__init__(description, **details)  # type: ignore[arg-type]

    @classmethod
    def for_message(
        cls, *, size: int, max_request_bytes: int, compress: bool = True
    ) -> MeshChunkingNotAllowed:
        """The refusal in plain English, naming the size and the limit (also for queue time)."""
        how = "even after compression" if compress else "uncompressed"
        return cls(
            f"This message is {size:,} bytes, more than {max_request_bytes:,} bytes {how}, the "
            "most MESH takes in one request, so it would have to go in chunks; the recipient does "
            "not accept chunked messages. Nothing was sent: send a smaller file or split it.",
            size=size,
            max_request_bytes=max_request_bytes,
        )


class MeshAuthenticationError(MeshError):
    """403: bad credentials, wrong shared key, or the mailbox may not do this."""


class MeshNotFoundError(MeshError):
    """404: no such message or chunk (or it belongs to someone else)."""


class MeshGoneError(MeshError):
    """410: the message exists but cannot be downloaded (uploading, failed, expired)."""


class MeshSendRejectedError(MeshError):
    """417: MESH refused the send, e.g. code 12 unknown recipient, 17 workflow not registered."""


class MeshChunkLockedError(MeshError):
    """423: the message was finalised, so no more chunks can be uploaded."""


class MeshTransientError(MeshError):
    """5xx, connection failure or timeout: probably temporary."""

    transient = True


class MeshRateLimitedError(MeshTransientError):
    """429: slow down; ``retry_after`` holds the server's hint in seconds, when given."""


class MeshSendOutcomeUnknown(MeshTransientError):
    """The first POST /outbox failed after it may have reached MESH.

    MESH has no idempotency key, so repeating the send could deliver a duplicate. Reconcile
    first: look for the message by its local id or in tracking, then decide.
    """

    @property
    def retryable(self) -> bool:
        return False


class MeshTLSError(MeshError):
    """TLS failed: untrusted server certificate, rejected client certificate, bad files."""


class MeshCertificateError(MeshTLSError, MeshValidationError):
    """A client certificate, key or CA file cannot be read or used (raised before any HTTP)."""


class MeshProtocolError(MeshError):
    """MESH answered something meshcore cannot interpret (e.g. a body that is not gzip)."""


class MeshPayloadTooLarge(MeshProtocolError):
    """A received message (or a response body) would pass one of the client's limits.

    ``limit_name`` says which (``max_message_bytes``, ``max_chunk_bytes``, ``max_expansion_ratio``,
    ``max_chunks``, ``max_response_body``), ``limit`` its value. Raised while streaming, before
    anything past the limit is written; the message stays in MESH unacknowledged.
    """

    def __init__(
        self,
        description: str | None = None,
        *,
        limit_name: str = "",
        limit: float | None = None,
        **details: object,
    ) -> None:
        self.limit_name = limit_name
        self.limit = limit
        super().__init__(description, **details)  # type: ignore[arg-type]


class MeshDeadlineExceeded(MeshTransientError):
    """A request (its body included) took longer than the client's deadline: a server trickling
    a body byte by byte is cut off instead of holding a worker for ever. Transient (try later)
    but not retried at once: repeating it would only multiply the time a worker is held."""

    @property
    def retryable(self) -> bool:
        return False


_BY_STATUS: dict[int, type[MeshError]] = {
    400: MeshValidationError,
    403: MeshAuthenticationError,
    404: MeshNotFoundError,
    410: MeshGoneError,
    417: MeshSendRejectedError,
    422: MeshValidationError,
    423: MeshChunkLockedError,
    429: MeshRateLimitedError,
}


def error_class_for_status(status: int) -> type[MeshError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return MeshTransientError if status >= 500 else MeshError


@dataclass(frozen=True)
class ErrorBody:
    """What an error response body says, whatever its shape."""

    description: str | None = None
    event: str | None = None
    code: str | None = None
    message_id: str | None = None


def parse_error_body(body: bytes | str | None) -> ErrorBody:
    """Read v1, v2, FastAPI validation, generic and non-JSON (XML/SOAP, HTML, text) error bodies."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = (body or "").strip()
    if not body:
        return ErrorBody()
    try:
        document = json.loads(body)
    except ValueError:
        return ErrorBody(description=_text_from_markup(body))
    if isinstance(document, dict):
        return _from_json(document)
    if isinstance(document, str):
        return ErrorBody(description=_shorten(document))
    return ErrorBody()


def _from_json(document: dict) -> ErrorBody:
    message_id = _str(document.get("message_id") or document.get("messageID"))
    if document.get("errorDescription") or document.get("errorCode"):
        return ErrorBody(
            description=_str(document.get("errorDescription")),
            event=_str(document.get("errorEvent")),
            code=_str(document.get("errorCode")),
            message_id=message_id,
        )
    detail = document.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        return ErrorBody(
            description=_validation_text(first),
            event=_str(first.get("event")),
            code=_str(first.get("code")),
            message_id=message_id,
        )
    if isinstance(detail, str):
        return ErrorBody(description=_shorten(detail), message_id=message_id)
    return ErrorBody(description=_str(document.get("message")), message_id=message_id)


def _validation_text(item: dict) -> str | None:
    """FastAPI validation items say which field failed in ``loc``: keep that in the text."""
    message = _str(item.get("msg"))
    location = item.get("loc")
    if isinstance(location, list) and len(location) > 1 and "code" not in item:
        return f"{message} ({': '.join(str(part) for part in location)})"
    return message


def _text_from_markup(text: str) -> str | None:
    """Pull the useful words out of an XML/SOAP or HTML error page."""
    fault = re.search(r"<(?:\w+:)?faultstring[^>]*>(.*?)</", text, re.S | re.I)
    if fault:
        text = fault.group(1)
    text = re.sub(r"<[^>]+>", " ", text)
    return _shorten(" ".join(text.split())) or None


def _str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return _shorten(str(value))


def _shorten(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
