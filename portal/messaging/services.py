"""Messaging services: queue a send, re-queue a failed one, refresh tracking."""

from __future__ import annotations

import re
import uuid
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

import meshcore
from meshcore import headers as mex
from meshcore import validation as mex_validation
from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.mailboxes.models import (
    Mailbox,
    Workflow,
    chunking_refused_reason,
    validate_mailbox_id,
)
from portal.mailboxes.services import MailboxNotReady, mesh_client
from portal.onboarding.gate import transfer_blocked_reason

from . import notices, pid
from .enqueue import enqueue_send, enqueue_send_unless_pending
from .mesh_codes import explain
from .models import (
    TRACK_NOW_EVERY,
    Direction,
    Message,
    MessageCount,
    MessageEvent,
    Status,
    next_track_at,
)

Kind = MessageEvent.Kind


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
) -> bool:
    """Every rule a send must pass before anything is stored. Returns whether `recipient` is a
    demographic address (the NHS-number form, for workflows marked for it)."""
    blocked = transfer_blocked_reason(mailbox)
    if blocked:
        raise SendRejected(f"Cannot send now: {blocked}.", field="mailbox")
    if size <= 0:
        raise SendRejected(
            "The file is empty: MESH does not accept a message without data.", field="file"
        )
    if size > settings.MESH_MAX_UPLOAD_BYTES:
        limit_gib = settings.MESH_MAX_UPLOAD_BYTES / 1024**3
        raise SendRejected(
            f"The file is larger than the {limit_gib:g} GiB MESH allows per message.", field="file"
        )
    workflow = mailbox.workflows.filter(
        workflow_id=workflow_id, direction=Workflow.Direction.SEND
    ).first()
    if workflow is None:
        raise SendRejected(
            f"Workflow {workflow_id} is not registered for sending from {mailbox.mailbox_id}: add it "
            "to the mailbox's workflows first (and make sure NHS England has registered it).",
            field="workflow_id",
        )
    demographic = _validate_recipient(recipient, workflow)
    pid_check(local_id=headers.get("local_id", ""), subject=headers.get("subject", ""))
    _validate_headers(
        recipient=recipient, workflow_id=workflow_id, demographic=demographic, **headers
    )
    return demographic


def _validate_recipient(recipient: str, workflow: Workflow) -> bool:
    if not looks_demographic(recipient):
        try:
            validate_mailbox_id(recipient)
        except ValidationError as exc:
            raise SendRejected(f"Recipient: {exc.messages[0]}", field="recipient") from None
        return False
    if not workflow.demographic_addressing:
        raise SendRejected(
            f"Recipient: an NHS number is not a mailbox id, and {workflow.workflow_id} is not "
            "marked for demographic addressing. Give the recipient's mailbox id.",
            field="recipient",
        )
    try:
        mex_validation.demographic_address(recipient)
    except meshcore.MeshValidationError as exc:
        text = (exc.description or str(exc)).replace("mex-To", "The recipient")
        raise SendRejected(f"{text}.", field="recipient") from None
    return True


def looks_demographic(recipient: str) -> bool:
    """A recipient written in the NHS-number form rather than as a mailbox id."""
    return bool(re.match(r"^\d{10}(_|$)", recipient.strip()))


def pid_check(*, local_id: str = "", subject: str = "") -> None:
    """MESH: the local id and subject must not contain patient identifiable data (the API and
    intake call this too, through message_queue_send)."""
    for field, label, text in (
        ("local_id", "The local id", local_id),
        ("subject", "The subject", subject),
    ):
        if problem := pid.pid_problem(label, text):
            raise SendRejected(problem, field=field)


def _validate_headers(
    *, recipient: str, workflow_id: str, demographic: bool = False, **headers: str
) -> None:
    """MESH's header rules, by meshcore's own check, so a send the worker would refuse never queues."""
    try:
        mex.send_metadata(
            to=recipient,
            workflow_id=workflow_id,
            demographic=demographic,
            **{name: value or None for name, value in headers.items()},
        )
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
    copied_from: Message | None = None,
    actor: Actor,
) -> Message:
    """Store the payload and create a queued outbound message; a worker sends it after commit.

    The one send service: the send form, `mesh_send`, the API and intake all come through here.
    The message, its event and its audit record (`message.queued`, naming `actor`) commit together.
    `encrypted` and `compressed` set MESH's mex-Content-Encrypted and mex-Content-Compressed (the
    sender's statements about the payload itself). A demographic recipient (an NHS number, for a
    workflow marked for it) keeps its case; a mailbox id is upper-cased. `copied_from`: the
    failed message this send fixes ("Fix and resend"); it gets an event pointing here.
    """
    user = actor.user
    recipient = recipient.strip()
    recipient = recipient if looks_demographic(recipient) else recipient.upper()
    filename = filename[:300]
    headers = {
        "filename": filename,
        "subject": subject,
        "local_id": local_id,
        "content_type": content_type,
    }
    demographic = _validate_send(
        mailbox=mailbox, recipient=recipient, workflow_id=workflow_id, size=size, headers=headers
    )
    chunking_refused = chunking_refused_reason(
        mailbox=mailbox, recipient=recipient, workflow_id=workflow_id
    )
    stored = payloads.store_stream(source, "out")
    try:
        if chunking_refused:
            _refuse_if_chunked(stored, mailbox, chunking_refused)
        with transaction.atomic():
            message = Message.objects.create(
                mailbox=mailbox,
                direction=Direction.OUTBOUND,
                recipient=recipient,
                sender=mailbox.mailbox_id,
                workflow_id=workflow_id,
                filename=filename,
                subject=subject,
                local_id=local_id or f"neomesh-{uuid.uuid4().hex}",
                content_type=content_type,
                encrypted=encrypted,
                compressed=compressed,
                size_bytes=stored.size,
                payload=stored.name,
                payload_sha256=stored.sha256,
                checksum=f"sha256:{stored.sha256}",
                status=Status.QUEUED,
                created_by=user,
                max_request_bytes=mailbox.max_request_bytes,
                chunking_allowed=not chunking_refused,
                demographic=demographic,
                copied_from=copied_from,
            )
            by = user or (actor.label if actor.kind in ("token", "worker") else "a command")
            message.add_event(Kind.QUEUED, f"Queued by {by}: {stored.size} bytes", actor=user)
            # A demographic recipient is patient-identifiable: never in full in the audit trail.
            detail = (
                f"To {message.recipient_display()}, workflow {message.workflow_id}, "
                f"{message.size_bytes} bytes"
            )
            if copied_from is not None:
                detail += f"; a fixed copy of failed message #{copied_from.pk}"
                copied_from.add_event(
                    Kind.COPIED, f"Fixed and sent again as message #{message.pk}", actor=user
                )
            record(actor=actor, action="message.queued", obj=message, detail=detail)
            transaction.on_commit(lambda: enqueue_send_unless_pending(message))
    except BaseException:
        payloads.delete_payload(stored.name)
        raise
    return message


def _refuse_if_chunked(stored: payloads.StoredPayload, mailbox: Mailbox, why: str) -> None:
    """SendRejected when meshcore would chunk this stored payload: the recipient cannot take it.

    meshcore's own answer (`needs_chunking`, exactly what `send` will do): free when the size
    decides, else one gzip pass that stops as soon as the limit is passed.
    """
    with payloads.open_payload(stored.name) as handle:
        chunked = meshcore.needs_chunking(handle, max_request_bytes=mailbox.max_request_bytes)
    if chunked:
        refusal = meshcore.MeshChunkingNotAllowed.for_message(
            size=stored.size, max_request_bytes=mailbox.max_request_bytes
        )
        raise SendRejected(f"{refusal.description} (Why: {why}.)", field="file")


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
        status=Status.QUEUED,
        mesh_message_id=None,
        chunks_done=0,
        chunk_size=None,
        attempts=0,
        next_attempt_at=None,
        max_request_bytes=message.mailbox.max_request_bytes,
        failure_reason="",
        last_error="",
        mesh_status_code="",
        mesh_status_event="",
        mesh_status_description="",
        local_id=f"neomesh-{uuid.uuid4().hex}"
        if message.local_id.startswith("neomesh-")
        else message.local_id,
    )
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


def message_refresh_tracking(*, message: Message, scheduled: bool = True) -> str:
    """Ask MESH where an accepted outbound message is; move it on when collected or failed.

    `scheduled` (the worker's backoff) moves the message to its next look (see
    `models.next_track_at`); a person's "Refresh now" does not. A final state ends tracking.
    """
    try:
        with mesh_client(message.mailbox) as client:
            status = client.track(message.mesh_message_id)
    except (meshcore.MeshError, MailboxNotReady) as exc:
        _tracked(message, scheduled, final=False, last_error=str(exc)[:2000])
        return f"tracking failed: {exc}"
    state = (status.status or "").lower()
    final = state in ("acknowledged", "error", "undeliverable")
    now = _tracked(message, scheduled, final=final)
    # Each move is a conditional update from "accepted": whatever happened to the message since it
    # was loaded (a report failed it, a person re-queued it) is never undone by a stale reading.
    still_accepted = Message.objects.filter(pk=message.pk, status=Status.ACCEPTED)
    if state == "acknowledged":
        # MESH's time of the acknowledgement, not when NeoMesh noticed it.
        at = status.status_timestamp
        with transaction.atomic():
            moved = still_accepted.update(status=Status.ACKNOWLEDGED, acknowledged_at=at or now)
            if moved:
                when = (
                    f"at {at:%Y-%m-%d %H:%M:%S} UTC"
                    if at
                    else "(MESH gave no time: the time shown is when NeoMesh saw it)"
                )
                message.add_event(
                    Kind.TRACKED, f"The recipient downloaded and acknowledged it {when}"
                )
                record(
                    actor=Actor.worker(),
                    action="message.tracked",
                    obj=message,
                    detail="acknowledged",
                )
                notices.acknowledged(message)
    elif state in ("error", "undeliverable"):
        reason = explain(status.status_code, status.status_description or "")
        with transaction.atomic():
            moved = still_accepted.update(
                status=Status.FAILED,
                failure_reason=reason,
                mesh_status_code=status.status_code or "",
                mesh_status_description=status.status_description or "",
            )
            if moved:
                message.add_event(Kind.FAILED, f"Tracking reports {state}: {reason}")
                MessageCount.add(message, MessageCount.Event.FAILED, status.status_code or "")
                record(
                    actor=Actor.worker(),
                    action="message.tracked",
                    obj=message,
                    detail=f"{state}: {reason}",
                )
                notices.send_failed(message, f"Tracking reports {state}: {reason}")
    return state


def _tracked(message: Message, scheduled: bool, *, final: bool, **fields):
    """Record a look at tracking, and when the next scheduled one is due."""
    now = timezone.now()
    fields["last_tracked_at"] = now
    if final:
        fields["next_track_at"] = None
    elif scheduled and message.accepted_at:
        fields["tracked_count"] = message.tracked_count + 1
        fields["next_track_at"] = next_track_at(
            accepted_at=message.accepted_at, tracked=message.tracked_count + 1, last=now
        )
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
    return now


class TrackRefused(Exception):
    """A person asked for tracking too soon after the last look; `allowed_at` says when."""

    def __init__(self, message: str, *, allowed_at=None):
        super().__init__(message)
        self.allowed_at = allowed_at


def message_track_now(*, message: Message, actor: Actor) -> str:
    """A person's "Refresh now": one look at MESH's tracking, at most every 5 minutes per message.

    Claimed by conditional update on `last_tracked_at`, so two clicks at once make one request.
    """
    if not (message.is_outbound and message.mesh_message_id and message.status == Status.ACCEPTED):
        raise TrackRefused("Only a message MESH has accepted and not yet settled can be tracked.")
    now = timezone.now()
    since = now - TRACK_NOW_EVERY
    due = models.Q(last_tracked_at__isnull=True) | models.Q(last_tracked_at__lte=since)
    if not Message.objects.filter(due, pk=message.pk).update(last_tracked_at=now):
        message.refresh_from_db(fields=["last_tracked_at"])
        allowed = message.may_refresh_tracking_at() or now
        raise TrackRefused(
            "MESH asks senders not to track often: the next refresh of this message is allowed "
            f"at {timezone.localtime(allowed):%H:%M:%S}.",
            allowed_at=allowed,
        )
    record(actor=actor, action="message.track_requested", obj=message)
    return message_refresh_tracking(message=message, scheduled=False)


def messages_to_track(now=None):
    """Accepted messages whose next scheduled look at tracking is due, the most overdue first."""
    now = now or timezone.now()
    return (
        Message.objects.outbound()
        .filter(status=Status.ACCEPTED, next_track_at__lte=now, mesh_message_id__isnull=False)
        .order_by("next_track_at")
    )
