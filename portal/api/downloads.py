"""A stored payload as an HTTP response: streamed in blocks, one byte range, sha256 in a header."""

from __future__ import annotations

import base64
import re

from django.http import StreamingHttpResponse

from portal.lib import payloads
from portal.messaging.models import Message
from portal.messaging.views import safe_download_name

from .problems import Problem

BLOCK = 1024 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for one `bytes=` range; None for the whole file; 416 if outside.

    Several ranges, or a header we do not understand, get the whole file (RFC 9110 allows it).
    """
    match = RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0:
            raise _unsatisfiable(size)
        return max(size - count, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> Problem:
    return Problem(
        416,
        f"The range asked for is outside the file, which has {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"},
    )


def _blocks(handle, start: int, length: int):
    try:
        _skip(handle, start)
        while length > 0:
            data = handle.read(min(BLOCK, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


def _skip(handle, offset: int) -> None:
    if not offset:
        return
    try:
        handle.seek(offset)
    except (AttributeError, OSError):  # a stream that cannot seek: read past the start
        while offset > 0:
            offset -= len(handle.read(min(BLOCK, offset)) or b"") or offset


def payload_response(message: Message, range_header: str | None) -> StreamingHttpResponse:
    if message.payload_purged_at:
        raise Problem(
            410,
            f"The payload was purged {message.payload_purged_at:%Y-%m-%d %H:%M} UTC under "
            f"retention rule “{message.payload_purge_rule}”; the message's details are kept.",
            kind="payload_purged",
        )
    if not message.payload:
        raise Problem(404, "This message has no stored payload.")
    size = message.size_bytes or 0
    span = parse_range(range_header, size)
    try:
        handle = payloads.open_payload(message.payload.name)
    except FileNotFoundError:
        raise Problem(
            404, "The payload file is missing from storage: tell an administrator."
        ) from None
    except payloads.PayloadUnreadable as exc:
        raise Problem(
            500,
            f"The stored payload cannot be read ({exc}): tell an administrator.",
            kind="payload_unreadable",
        ) from None
    start, end = span or (0, size - 1)
    response = StreamingHttpResponse(
        _blocks(handle, start, end - start + 1),
        status=206 if span else 200,
        content_type="application/octet-stream",
    )
    response["Content-Length"] = str(max(end - start + 1, 0))
    response["Accept-Ranges"] = "bytes"
    if span:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    if message.payload_sha256:
        digest = base64.b64encode(bytes.fromhex(message.payload_sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
        response["X-Payload-SHA256"] = message.payload_sha256
    response["Content-Disposition"] = f'attachment; filename="{safe_download_name(message)}"'
    return response
