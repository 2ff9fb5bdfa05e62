"""The events messaging raises (portal.events), each in the transaction that changes the message.

Summaries are plain text for people: the message by its MESH id, subject and workflow, and the
reason in plain English. Alerts (and webhooks) render them; they escape whatever the text holds.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.events.kinds import Severity
from portal.events.models import Event
from portal.events.services import event_emit, problem_raise, problem_resolve, problems_open

from .models import INBOX_EXPIRY, Message, Status

# A received message still unacknowledged this long is one day from MESH's 5-day limit.
INBOUND_WARN_AFTER = INBOX_EXPIRY - timedelta(days=1)


def _mailbox_name(message: Message) -> str:
    """The MESH mailbox id, read alone: the mailbox row may hold secrets that cannot be decrypted."""
    from portal.mailboxes.models import Mailbox

    if Message.mailbox.is_cached(message):
        return message.mailbox.mailbox_id
    found = Mailbox.objects.filter(pk=message.mailbox_id).values_list("mailbox_id", flat=True)
    return found.first() or f"mailbox #{message.mailbox_id}"


def _data(message: Message, **extra) -> dict:
    return {
        "mesh_message_id": message.mesh_message_id or "",
        "local_id": message.local_id,
        "mailbox": _mailbox_name(message),
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": message.subject,
        "filename": message.filename,
        "direction": message.direction,
        **extra,
    }


def _named(message: Message) -> str:
    text = f"message {message.mesh_message_id or '#' + str(message.pk)}"
    if message.subject:
        text += f' "{message.subject[:100]}"'
    return text


def _emit(message: Message, kind: str, severity: str, summary: str, **extra) -> Event:
    problem = extra.pop("problem_key", "")
    resolves = extra.pop("resolves", False)
    return event_emit(
        kind=kind,
        severity=severity,
        summary=summary,
        mailbox_id=message.mailbox_id,
        message_id=message.pk,
        workflow=message.workflow_id,
        problem_key=problem,
        resolves=resolves,
        data=_data(message, **extra),
    )


def received(message: Message) -> Event:
    return _emit(
        message,
        "message.received",
        Severity.INFO,
        f"{_mailbox_name(message)} received {_named(message)} from {message.sender or 'an unknown sender'} "
        f"(workflow {message.workflow_id or 'none'}).",
    )


def ndr(report: Message, original: Message | None, reason: str) -> Event:
    """A non-delivery report: about the message it concerns when we have it, else the report."""
    concerns = original or report
    about = (
        _named(original) if original else f"message {report.linked_mesh_message_id or 'unknown'}"
    )
    return event_emit(
        kind="message.ndr",
        severity=Severity.ERROR,
        summary=f"Non-delivery report for {about} to {concerns.recipient}: {reason}",
        mailbox_id=report.mailbox_id,
        message_id=concerns.pk,
        workflow=concerns.workflow_id or report.workflow_id,
        data=_data(
            concerns,
            reason=reason,
            report_mesh_message_id=report.mesh_message_id or "",
            report_id=report.pk,
            mesh_status_code=report.mesh_status_code,
        ),
    )


def send_failed(message: Message, reason: str) -> Event:
    return _emit(
        message,
        "message.send_failed",
        Severity.ERROR,
        f"Send of {_named(message)} from {_mailbox_name(message)} to {message.recipient} "
        f"failed: {reason}",
        reason=reason,
    )


def send_uncertain(message: Message, reason: str) -> Event:
    return _emit(
        message,
        "message.send_uncertain",
        Severity.WARNING,
        f"The outcome of sending {_named(message)} to {message.recipient} is unknown: {reason}",
        reason=reason,
    )


def acknowledged(message: Message) -> Event:
    """Always raised; it also resolves an "acknowledgement overdue" problem if one was open."""
    return _emit(
        message,
        "message.acknowledged",
        Severity.INFO,
        f"{message.recipient} downloaded and acknowledged {_named(message)}.",
        problem_key=f"message:{message.pk}:ack",
        resolves=True,
    )


def expected_ack_within(message: Message) -> timedelta:
    """How long the recipient usually takes to acknowledge: the workflow's, else the setting's."""
    from portal.mailboxes.models import Workflow

    workflow = (
        Workflow.objects.filter(mailbox_id=message.mailbox_id, workflow_id=message.workflow_id)
        .values()
        .first()
    )
    hours = (workflow or {}).get("expected_ack_hours")
    return timedelta(hours=hours or settings.MESSAGING_ACK_EXPECTED_HOURS)


@transaction.atomic
def messages_check_overdue(*, now=None) -> dict[str, int]:
    """Scheduled hourly: received messages near MESH's limit, sent ones not acknowledged in time."""
    now = now or timezone.now()
    inbound = 0
    stuck = Message.objects.inbound().filter(
        status=Status.RECEIVED, received_at__lte=now - INBOUND_WARN_AFTER
    )
    for message in stuck.select_related("mailbox")[:500]:
        deadline = (message.received_at or message.created_at) + INBOX_EXPIRY
        inbound += bool(
            problem_raise(
                problem_key=f"message:{message.pk}:inbound",
                kind="message.inbound_expiring",
                severity=Severity.WARNING,
                summary=(
                    f"{_named(message)} in {_mailbox_name(message)} is still not acknowledged to "
                    f"MESH; MESH deletes it and reports it undelivered after {deadline:%d %b %Y %H:%M}."
                ),
                mailbox_id=message.mailbox_id,
                message_id=message.pk,
                workflow=message.workflow_id,
                data=_data(message, deadline=deadline.isoformat()),
            )
        )
    return {"inbound": inbound, "unacknowledged": _check_unacknowledged(now)}


def _check_unacknowledged(now) -> int:
    raised = 0
    waiting = Message.objects.outbound().filter(
        status=Status.ACCEPTED, accepted_at__lte=now - timedelta(hours=1)
    )
    for message in waiting.select_related("mailbox")[:500]:
        within = expected_ack_within(message)
        if message.accepted_at > now - within:
            continue
        raised += bool(
            problem_raise(
                problem_key=f"message:{message.pk}:ack",
                kind="message.ack_overdue",
                severity=Severity.WARNING,
                summary=(
                    f"{message.recipient} has not acknowledged {_named(message)} sent "
                    f"{message.accepted_at:%d %b %Y %H:%M}, longer than the {_hours(within)} expected."
                ),
                mailbox_id=message.mailbox_id,
                message_id=message.pk,
                workflow=message.workflow_id,
                data=_data(message, expected_hours=within / timedelta(hours=1)),
            )
        )
    return raised


def _hours(within: timedelta) -> str:
    hours = within / timedelta(hours=1)
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def inbound_acknowledged_many(messages: list[Message]) -> None:
    """`inbound_acknowledged` for a batch: one query finds which had a problem open."""
    by_key = {f"message:{message.pk}:inbound": message for message in messages}
    for key in problems_open(by_key):
        inbound_acknowledged(by_key[key])


def inbound_acknowledged(message: Message) -> None:
    """A received message acknowledged to MESH at last: its near-the-limit problem is over."""
    problem_resolve(
        problem_key=f"message:{message.pk}:inbound",
        kind="message.inbound_acknowledged",
        severity=Severity.INFO,
        summary=f"{_named(message)} in {_mailbox_name(message)} is now acknowledged to MESH.",
        mailbox_id=message.mailbox_id,
        message_id=message.pk,
        workflow=message.workflow_id,
    )


def poll_result(mailbox, *, ok: bool, error: str = "", now=None) -> None:
    """In the transaction that records the poll: failing too long raises, a success resolves."""
    from portal.mailboxes.models import Mailbox

    key = f"mailbox:{mailbox.pk}:poll"
    if ok:
        problem_resolve(
            problem_key=key,
            kind="mailbox.poll_recovered",
            severity=Severity.INFO,
            summary=f"Polls of {mailbox.mailbox_id} succeed again.",
            mailbox_id=mailbox.pk,
            data={"mailbox": mailbox.mailbox_id},
        )
        return
    since = Mailbox.objects.filter(pk=mailbox.pk).values_list("poll_failing_since", flat=True)[0]
    threshold = timedelta(minutes=settings.MAILBOX_POLL_FAILING_MINUTES)
    if since is None or (now or timezone.now()) - since < threshold:
        return
    problem_raise(
        problem_key=key,
        kind="mailbox.poll_failing",
        severity=Severity.ERROR,
        summary=(
            f"Polls of {mailbox.mailbox_id} have been failing since {since:%d %b %Y %H:%M}: {error}"
        ),
        mailbox_id=mailbox.pk,
        data={"mailbox": mailbox.mailbox_id, "error": error},
    )
