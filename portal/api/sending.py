"""A send through the API: the body streams into the payload store, through the send form's service.

The payload is the raw request body (the MESH fields as query parameters) or the `file` part of a
multipart form (the fields as form fields). Either way the size is known before a byte is stored,
so a body over the limit is refused before it is stored, and the raw body is read in 1 MiB blocks:
memory stays flat at any size.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.messaging.services import SendRejected, message_queue_send

from .models import STALE_RESERVATION, IdempotencyKey
from .problems import Problem

FORM_TYPES = ("multipart/form-data",)
REFUSED_TYPES = ("application/x-www-form-urlencoded",)
# Room for the multipart boundaries and form fields around the file.
MULTIPART_OVERHEAD = 1024 * 1024


class IncompleteBody(Exception):
    pass


class ExactReader:
    """Reads exactly `size` bytes from a stream; ending short raises (the partial file is removed)."""

    def __init__(self, stream, size: int):
        self._stream, self._left, self.size = stream, size, size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(want)
        if not data:
            raise IncompleteBody(
                f"The body ended after {self.size - self._left} of the {self.size} bytes announced."
            )
        self._left -= len(data)
        return data


def body_stream(request):
    """The request body to read from: under gunicorn, its length reader, else Django's stream.

    gunicorn's `wsgi.input` (`Body`) answers a 1 MiB read in 1 KiB steps, each a fresh buffer:
    that alone halved upload speed in `make bench` (bench/api.py). Its `reader` (a LengthReader,
    bounded by Content-Length) returns the socket's data in the size asked for. Used only while
    nothing has been read through `Body`, so no byte is skipped.
    """
    stream = request.META.get("wsgi.input")
    reader = getattr(stream, "reader", None)
    buffered = getattr(stream, "buf", None)
    if reader is not None and hasattr(reader, "read") and hasattr(buffered, "tell"):
        if buffered.tell() == 0 and type(reader).__name__ == "LengthReader":
            return reader
    return request


def content_length(request) -> int:
    """The announced body size; 411 without one, 413 over the MESH limit (nothing read yet)."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    try:
        size = int(raw)
    except ValueError:
        raise Problem(
            411, "Send the payload with a Content-Length header (chunked uploads are not taken)."
        ) from None
    if size < 0:
        raise Problem(400, "The Content-Length header is not a size.")
    return size


def check_size(size: int, *, overhead: int = 0) -> None:
    limit = settings.MESH_MAX_UPLOAD_BYTES
    if size > limit + overhead:
        raise Problem(
            413,
            f"The payload is larger than the {limit / 1024**3:g} GiB MESH allows per message "
            f"({size} bytes announced); nothing was stored.",
            kind="too-large",
        )


def idempotency_reserve(*, mailbox, key: str) -> tuple[IdempotencyKey, object | None]:
    """Hold `key` for this send, or return the message an earlier call with it made.

    The key row is created before the payload is read, in its own transaction: of two identical
    calls at once, one holds it and the other is told to repeat later, so MESH never gets two.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(mailbox=mailbox, key=key, created_at=now), None
    except IntegrityError:
        row = IdempotencyKey.objects.select_related("message").get(mailbox=mailbox, key=key)
    if row.message is not None:
        return row, row.message
    stale = row.created_at < now - STALE_RESERVATION
    taken = stale and IdempotencyKey.objects.filter(
        pk=row.pk, created_at=row.created_at, message__isnull=True
    ).update(created_at=now)
    if taken:
        return row, None
    raise Problem(
        409,
        "A send with this key is still being received: repeat the call in a moment to get its "
        "message.",
        kind="in-progress",
    )


def idempotency_key(request, fields: dict) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if key:
        if len(key) > 200 or not key.isascii() or not key.isprintable():
            raise Problem(
                400,
                "Idempotency-Key must be at most 200 printable ASCII characters.",
                kind="invalid",
                errors={"Idempotency-Key": ["At most 200 printable ASCII characters."]},
            )
        return f"key:{key}"
    return f"local_id:{fields['local_id']}" if fields.get("local_id") else ""


def queue(*, fields: dict, source, size: int, content_type: str, actor):
    """The send form's own service; its refusals become 400 (field named) or 409 (not ready)."""
    try:
        return message_queue_send(
            mailbox=fields["mailbox"],
            recipient=fields["recipient"],
            workflow_id=fields["workflow_id"],
            source=source,
            size=size,
            filename=fields["filename"],
            subject=fields["subject"],
            local_id=fields["local_id"],
            content_type=fields["content_type"] or content_type,
            encrypted=fields["encrypted"],
            compressed=fields["compressed"],
            actor=actor,
        )
    except SendRejected as exc:
        if exc.field == "mailbox" and str(exc).startswith("Cannot send now"):
            raise Problem(409, str(exc), kind="mailbox-not-ready") from None
        field = _api_field(exc)
        raise Problem(
            400, f"Check these fields. {field}: {exc}", kind="invalid", errors={field: [str(exc)]}
        ) from None
    except IncompleteBody as exc:
        raise Problem(400, f"{exc} Nothing was stored: send it again.", kind="incomplete") from None


def _api_field(exc: SendRejected) -> str:
    text = str(exc)
    if exc.field != "file":
        return exc.field or "non_field_errors"
    if text.startswith("The file's name"):
        return "filename"
    if text.startswith("The file's content type"):
        return "content_type"
    return "payload"
