"""Messaging services: queue a send, re-queue a failed one, refresh tracking."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import meshcore
from meshcore import headers as mex
from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.mailboxes.models import Mailbox, Workflow, validate_mailbox_id
from portal.mailboxes.services import MailboxNotReady, mesh_client
from portal.onboarding.gate import transfer_blocked_reason

from . import notices
from .enqueue import enqueue_send, enqueue_send_unless_pending
from .mesh_codes import explain
from .models import Direction, Message, MessageCount, MessageEvent, Status

Kind = MessageEvent.Kind
TRACK_EVERY = timedelta(hours=1)
TRACK_FOR = timedelta(days=6)


# MESH header -> (send form field, how a person calls it).
HEADER_FIELDS = {
    "mex-To": ("recipient", "The recipient mailbox id"),
    "mex-WorkflowID": ("workflow_id", "The workflow id"),
    "mex-FileName": ("file", "The file's name"),
    "mex-Subject": ("subject", "The subject"),
    "mex-LocalID": ("local_id", "The local id"),
    "mex-Content-Type": ("file", "The file's content type"),
}


class SendRejected(Exception):
    """A send request breaks a rule; the message says which, in plain English.

    `field` names the send form's field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def _validate_send(
    *, mailbox: Mailbox, recipient: str, workflow_id: str, size: int, headers: dict[str, str]
) -> None:
    blocked = transfer_blocked_reason(mailbox)
    if blocked:
        raise SendRejected(f"Cannot send now: {blocked}.", field="mailbox")
    try:
        validate_mailbox_id(recipient)
    except Exception as exc:
        raise SendRejected(
            f"Recipient: {exc.messages[0] if hasattr(exc, 'messages') else exc}",
            field="recipient",
        ) from None
    if size <= 0:
        raise SendRejected(
            "The file is empty: MESH does not accept a message without data.", field="file"
        )
    if size > settings.MESH_MAX_UPLOAD_BYTES:
        limit_gib = settings.MESH_MAX_UPLOAD_BYTES / 1024**3
        raise SendRejected(
            f"The file is larger than the {limit_gib:g} GiB MESH allows per message.", field="file"
        )
    registered = mailbox.workflows.filter(
        workflow_id=workflow_id, direction=Workflow.Direction.SEND
    )
    if not registered.exists():
        raise SendRejected(
            f"Workflow {workflow_id} is not registered for sending from {mailbox.mailbox_id}: add it "
            "to the mailbox's workflows first (and make sure NHS England has registered it).",
            field="workflow_id",
        )
    _validate_headers(recipient=recipient, workflow_id=workflow_id, **headers)


def _validate_headers(*, recipient: str, workflow_id: str, **headers: str) -> None:
    """MESH's header rules, by meshcore's own check, so a send the worker would refuse never queues."""
    try:
        mex.send_metadata(
            to=recipient, workflow_id=workflow_id,
            **{name: value or None for name, value in headers.items()},
        )  # fmt: skip
    except meshcore.MeshValidationError as exc:
        text = exc.description or str(exc)
        header = next((name for name in HEADER_FIELDS if text.startswith(name + " ")), None)
        if header is None:
            raise SendRejected(f"MESH would not accept this message: {text}") from None
        field, label = HEADER_FIELDS[header]
        reason = f"{label}{text[len(header) :]}."
        if "ASCII" in text:
            reason += " MESH allows only plain ASCII here: replace accented letters and symbols."
        raise SendRejected(reason, field=field) from None


def message_queue_send(
    *,
    mailbox: Mailbox,
    recipient: str,
    workflow_id: str,
    source: BinaryIO,
    size: int,
    filename: str = "",
    subject: str = "",
    local_id: str = "",
    content_type: str = "",
    encrypted: bool = False,
    compressed: bool = False,
    actor: Actor,
) -> Message:
    """Store the payload and create a queued outbound message; a worker sends it after commit.

    The message, its event and its audit record (`message.queued`, naming `actor`) commit together.
    """
    user = actor.user
    recipient = recipient.strip().upper()
    filename = filename[:300]
    headers = {"filename": filename, "subject": subject, "local_id": local_id,
               "content_type": content_type}  # fmt: skip
    _validate_send(
        mailbox=mailbox, recipient=recipient, workflow_id=workflow_id, size=size, headers=headers
    )
    stored = payloads.store_stream(source, "out")
    try:
        with transaction.atomic():
            message = Message.objects.create(
                mailbox=mailbox, direction=Direction.OUTBOUND, recipient=recipient,
                sender=mailbox.mailbox_id, workflow_id=workflow_id, filename=filename,
                subject=subject, local_id=local_id or f"neomesh-{uuid.uuid4().hex}",
                content_type=content_type, encrypted=encrypted, compressed=compressed,
                size_bytes=stored.size, payload=stored.name,
                payload_sha256=stored.sha256, checksum=f"sha256:{stored.sha256}",
                status=Status.QUEUED, created_by=user,
            )  # fmt: skip
            by = user or (actor.label if actor.kind in ("token", "worker") else "a command")
            message.add_event(Kind.QUEUED, f"Queued by {by}: {stored.size} bytes", actor=user)
            detail = f"To {recipient}, workflow {workflow_id}, {stored.size} bytes"
            record(actor=actor, action="message.queued", obj=message, detail=detail)
            transaction.on_commit(lambda: enqueue_send_unless_pending(message))
    except BaseException:
        payloads.delete_payload(stored.name)
        raise
    return message


@transaction.atomic
def message_requeue(*, message: Message, actor: Actor | None = None) -> Message:
    """A person sends a failed or uncertain outbound message again, from the start."""
    if message.direction != Direction.OUTBOUND or message.status not in (
        Status.FAILED,
        Status.UNCERTAIN,
    ):
        raise SendRejected(
            "Only a failed outbound message, or one whose outcome is unknown, can be resent."
        )
    blocked = transfer_blocked_reason(message.mailbox)
    if blocked:
        raise SendRejected(f"Cannot send now: {blocked}.")
    # From the start, so the chunk size is chosen afresh at the next claim.
    Message.objects.filter(pk=message.pk).update(
        status=Status.QUEUED, mesh_message_id=None, chunks_done=0, chunk_size=None, attempts=0,
        next_attempt_at=None,
        failure_reason="", last_error="", mesh_status_code="", mesh_status_event="",
        mesh_status_description="", local_id=f"neomesh-{uuid.uuid4().hex}"
        if message.local_id.startswith("neomesh-") else message.local_id,
    )  # fmt: skip
    user = actor.user if actor else None
    message.add_event(Kind.RESENT, "Re-queued to send again from the start", actor=user)
    transaction.on_commit(lambda: enqueue_send(message.pk))
    if actor is not None:
        record(actor=actor, action="message.resend", obj=message)
    message.refresh_from_db()
    return message


@transaction.atomic
def payload_confirm(*, message: Message, source: str, actor: Actor | None = None) -> bool:
    """Record that a payload was delivered onwards (the API's confirm, or a delivery downstream):
    retention keys on `payload_confirmed_at`. False when it was confirmed already.

    `source` says what confirmed it ("API confirm by API token lab (nmk_...)"). The actor is
    `actor` (a person, an API token), else the worker.
    """
    now = timezone.now()
    if not Message.objects.filter(pk=message.pk, payload_confirmed_at__isnull=True).update(
        payload_confirmed_at=now
    ):
        return False
    message.payload_confirmed_at = now
    actor = actor or Actor.worker()
    detail = f"Delivery confirmed: {source}"
    message.add_event(Kind.CONFIRMED, detail, actor=actor.user)
    record(actor=actor, action="message.payload_confirmed", obj=message, detail=detail)
    return True


def message_refresh_tracking(*, message: Message) -> str:
    """Ask MESH where an accepted outbound message is; move it on when collected or failed."""
    try:
        with mesh_client(message.mailbox) as client:
            status = client.track(message.mesh_message_id)
    except (meshcore.MeshError, MailboxNotReady) as exc:
        Message.objects.filter(pk=message.pk).update(
            last_tracked_at=timezone.now(), last_error=str(exc)[:2000]
        )
        return f"tracking failed: {exc}"
    now = timezone.now()
    Message.objects.filter(pk=message.pk).update(last_tracked_at=now)
    state = (status.status or "").lower()
    # Each move is a conditional update from "accepted": whatever happened to the message since it
    # was loaded (a report failed it, a person re-queued it) is never undone by a stale reading.
    still_accepted = Message.objects.filter(pk=message.pk, status=Status.ACCEPTED)
    if state == "acknowledged":
        with transaction.atomic():
            moved = still_accepted.update(status=Status.ACKNOWLEDGED, acknowledged_at=now)
            if moved:
                message.add_event(Kind.TRACKED, "The recipient has downloaded and acknowledged it")
                record(actor=Actor.worker(), action="message.tracked", obj=message, detail="acknowledged")
                notices.acknowledged(message)
    elif state in ("error", "undeliverable"):
        reason = explain(status.status_code, status.status_description or "")
        with transaction.atomic():
            moved = still_accepted.update(
                status=Status.FAILED, failure_reason=reason,
                mesh_status_code=status.status_code or "",
                mesh_status_description=status.status_description or "",
            )  # fmt: skip
            if moved:
                message.add_event(Kind.FAILED, f"Tracking reports {state}: {reason}")
                MessageCount.add(message, MessageCount.Event.FAILED, status.status_code or "")
                record(
                    actor=Actor.worker(), action="message.tracked", obj=message, detail=f"{state}: {reason}"
                )
                notices.send_failed(message, f"Tracking reports {state}: {reason}")
    return state


def messages_to_track(now=None):
    now = now or timezone.now()
    return (
        Message.objects.outbound()
        .filter(
            status=Status.ACCEPTED, accepted_at__gte=now - TRACK_FOR, mesh_message_id__isnull=False
        )
        .exclude(last_tracked_at__gt=now - TRACK_EVERY)
    )

