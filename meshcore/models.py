"""Typed results returned by MeshClient, and the parsing of MESH headers and JSON into them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

DATA = "DATA"
REPORT = "REPORT"


class MailboxRef(NamedTuple):
    """A mailbox found by endpoint lookup or workflow search."""

    mailbox_id: str
    mailbox_name: str


@dataclass(frozen=True)
class HandshakeResult:
    """A successful handshake, with the server's clock when it sent a Date header."""

    mailbox_id: str
    server_time: datetime | None = None
    clock_skew_seconds: float | None = None


@dataclass
class MessageInfo:
    """Everything MESH says about a downloaded message.

    ``compressed`` is the *application* flag (``mex-Content-Compressed: Y``): the sender says the
    payload itself is compressed (say, a zip the recipient must open). It is never about transport
    gzip, which meshcore undoes for you; ``transport_encoding`` tells whether the first response was
    gzipped in transit. The sandbox sets ``mex-Content-Compressed: Y`` whenever it gzips in
    transit, so when the response carries ``Content-Encoding: gzip`` the flag cannot be trusted and
    ``compressed`` is reported False.
    """

    message_id: str
    message_type: str = DATA
    sender: str | None = None
    recipient: str | None = None
    workflow_id: str | None = None
    filename: str | None = None
    local_id: str | None = None
    subject: str | None = None
    content_type: str | None = None
    checksum: str | None = None
    partner_id: str | None = None
    compressed: bool = False
    encrypted: bool = False
    total_chunks: int = 1
    chunk_range: str | None = None
    transport_encoding: str | None = None
    size: int = 0
    status_code: str | None = None
    status_event: str | None = None
    status_description: str | None = None
    status_success: bool | None = None
    status_timestamp: datetime | None = None
    linked_message_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_report(self) -> bool:
        return self.message_type == REPORT


@dataclass(frozen=True)
class TrackingStatus:
    """The sender's view of a sent message (``GET /outbox/tracking?messageID=``)."""

    message_id: str
    status: str | None = None
    status_success: bool | None = None
    status_code: str | None = None
    status_event: str | None = None
    status_description: str | None = None
    status_timestamp: datetime | None = None
    local_id: str | None = None
    workflow_id: str | None = None
    filename: str | None = None
    recipient: str | None = None
    recipient_name: str | None = None
    recipient_ods_code: str | None = None
    recipient_org_code: str | None = None
    recipient_org_name: str | None = None
    expiry_time: datetime | None = None
    upload_timestamp: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_acknowledged(self) -> bool:
        return self.status == "acknowledged"


def parse_timestamp(value: object) -> datetime | None:
    """Accept every timestamp MESH emits: ISO (naive means UTC), ``yyyyMMddHHmmss``, ``...HHmm``."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        # Decide by length: strptime would also read "202611281842" as 18:04:02.
        pattern = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M"}.get(len(text))
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC) if pattern else None
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _flag(value: str | None) -> bool:
    return (value or "").strip().upper() in {"Y", "YES", "TRUE", "1"}


def _total_chunks(headers: Mapping[str, str]) -> tuple[int, str | None]:
    chunk_range = headers.get("mex-chunk-range")
    total = headers.get("mex-total-chunks")
    if not total and chunk_range and ":" in chunk_range:
        total = chunk_range.split(":", 1)[1]
    try:
        return int(str(total).strip()), chunk_range
    except ValueError:
        return 1, chunk_range


def message_info_from_headers(message_id: str, headers: Mapping[str, str]) -> MessageInfo:
    """Build a MessageInfo from a download or HEAD response's headers (any case)."""
    lower = {key.lower(): value for key, value in headers.items()}
    get = lower.get
    message_type = (get("mex-messagetype") or DATA).strip().upper()
    total_chunks, chunk_range = _total_chunks(lower)
    transport = (get("content-encoding") or "").strip().lower() or None
    success = get("mex-statussuccess")
    return MessageInfo(
        message_id=get("mex-messageid") or message_id,
        message_type=message_type,
        sender=get("mex-from") or None,
        recipient=get("mex-to") or None,
        workflow_id=get("mex-workflowid") or None,
        filename=get("mex-filename") or None,
        local_id=get("mex-localid") or None,
        subject=get("mex-subject") or None,
        content_type=get("mex-content-type") or get("content-type") or None,
        checksum=get("mex-content-checksum") or None,
        partner_id=get("mex-partnerid") or None,
        compressed=_flag(get("mex-content-compressed")) and transport != "gzip",
        encrypted=_flag(get("mex-content-encrypted")),
        total_chunks=0 if message_type == REPORT else max(total_chunks, 1),
        chunk_range=chunk_range,
        transport_encoding=transport,
        status_code=get("mex-statuscode") or None,
        status_event=get("mex-statusevent") or None,
        status_description=get("mex-statusdescription") or None,
        status_success=None if success is None else success.strip().upper() == "SUCCESS",
        status_timestamp=parse_timestamp(get("mex-statustimestamp")),
        linked_message_id=get("mex-linkedmsgid") or None,
        headers=lower,
    )


# v1 tracking keys, for a server that answers in v1 despite the v2 Accept header.
_V1_TRACKING_KEYS = {
    "messageId": "message_id",
    "localId": "local_id",
    "workflowId": "workflow_id",
    "fileName": "filename",
    "statusCode": "status_code",
    "statusEvent": "status_event",
    "statusDescription": "status_description",
    "statusTimestamp": "status_timestamp",
    "expiryTime": "expiry_time",
    "uploadTimestamp": "upload_timestamp",
    "recipientName": "recipient_name",
    "meshRecipientOdsCode": "recipient_ods_code",
    "recipientOrgCode": "recipient_org_code",
    "recipientOrgName": "recipient_org_name",
    "statusSuccess": "status_success",
}


def tracking_from_json(message_id: str, document: dict[str, Any]) -> TrackingStatus:
    data = {_V1_TRACKING_KEYS.get(key, key): value for key, value in document.items()}
    success = data.get("status_success")
    if isinstance(success, str):
        success = success.strip().upper() in {"SUCCESS", "TRUE"}
    status = data.get("status")

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value in (None, "") else str(value)

    return TrackingStatus(
        message_id=text("message_id") or message_id,
        status=status.lower() if isinstance(status, str) else None,
        status_success=success,
        status_code=text("status_code"),
        status_event=text("status_event"),
        status_description=text("status_description"),
        status_timestamp=parse_timestamp(data.get("status_timestamp")),
        local_id=text("local_id"),
        workflow_id=text("workflow_id"),
        filename=text("filename"),
        recipient=text("recipient"),
        recipient_name=text("recipient_name"),
        recipient_ods_code=text("recipient_ods_code"),
        recipient_org_code=text("recipient_org_code"),
        recipient_org_name=text("recipient_org_name"),
        expiry_time=parse_timestamp(data.get("expiry_time")),
        upload_timestamp=parse_timestamp(data.get("upload_timestamp")),
        raw=dict(document),
    )


def mailboxes_from_json(document: dict[str, Any]) -> list[MailboxRef]:
    """v2 ``results: [{mailbox_id, mailbox_name}]``; v1 ``results: [{address, description}]``."""
    found = []
    for item in document.get("results") or []:
        mailbox_id = item.get("mailbox_id") or item.get("address")
        if mailbox_id:
            found.append(
                MailboxRef(
                    str(mailbox_id), str(item.get("mailbox_name") or item.get("description") or "")
                )
            )
    return found
