"""Business acknowledgements: the recipient's own "we have processed it" (mesh-protocol.md 8.4).

MESH's acknowledgement only says a message was downloaded. Where the receiving business process
must confirm, the recipient sends a separate message on the same workflow id plus `_ACK`. When
such a message arrives it is linked to the message it acknowledges, found among the messages this
mailbox sent on the base workflow to the ACK's sender, by the sending workflow's rule:

- `local_id` (default): the ACK's local id is our local id;
- `subject`: the ACK's subject is our local id;
- `message_id`: the ACK's local id is our MESH message id.

A sending workflow may also say how soon a business acknowledgement is expected
(`business_ack_hours`); `business_acks_check_overdue` (scheduled) raises a
`message.business_ack_overdue` event for each message past it without one, once, and the
acknowledgement arriving later resolves that problem.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.audit.services import Actor, record
from portal.events.kinds import Severity
from portal.events.services import problem_raise, problem_resolve
from portal.mailboxes.models import Workflow

from .models import Direction, Message, MessageEvent, MessageType, Status

ACK_SUFFIX = "_ACK"
# Sent messages older than this are no longer watched for an overdue business acknowledgement.
WATCH_FOR = timedelta(days=30)


def problem_key(message: Message) -> str:
    return f"message:{message.pk}:business_ack"


def _rule(mailbox_id: int, workflow_id: str) -> Workflow | None:
    return Workflow.objects.filter(
        mailbox_id=mailbox_id, workflow_id=workflow_id, direction=Workflow.Direction.SEND
    ).first()


def _key_lookup(ack: Message, rule: str) -> Q | None:
    if rule == Workflow.AckMatch.SUBJECT:
        return Q(local_id=ack.subject) if ack.subject else None
    if rule == Workflow.AckMatch.MESSAGE_ID:
        return Q(mesh_message_id=ack.local_id) if ack.local_id else None
    return Q(local_id=ack.local_id) if ack.local_id else None


def find_acknowledged(ack: Message) -> Message | None:
    """The outbound message an inbound `<WORKFLOW>_ACK` message acknowledges, or None."""
    if ack.is_outbound or ack.is_report or not ack.workflow_id.upper().endswith(ACK_SUFFIX):
        return None
    base = ack.workflow_id[: -len(ACK_SUFFIX)]
    workflow = _rule(ack.mailbox_id, base)
    lookup = _key_lookup(ack, workflow.business_ack_match if workflow else "local_id")
    if lookup is None:
        return None
    sent_to_sender = Q(recipient=ack.sender) | Q(demographic=True)
    candidates = Message.objects.filter(
        lookup,
        sent_to_sender,
        mailbox_id=ack.mailbox_id,
        direction=Direction.OUTBOUND,
        message_type=MessageType.DATA,
        workflow_id=base,
    )
    return candidates.order_by("-created_at").first()


def business_ack_link(ack: Message) -> Message | None:
    """Link a just-stored ACK to the message it acknowledges; call it in the storing transaction."""
    original = find_acknowledged(ack)
    if original is None:
        return None
    Message.objects.filter(pk=ack.pk).update(acknowledges=original)
    ack.acknowledges = original
    original.add_event(
        MessageEvent.Kind.BUSINESS_ACK,
        f"Business acknowledgement {ack.mesh_message_id} received from {ack.sender}",
    )
    record(
        actor=Actor.worker(),
        action="message.business_ack_linked",
        obj=original,
        detail=f"acknowledged by {ack.workflow_id} message {ack.mesh_message_id}",
    )
    problem_resolve(
        problem_key=problem_key(original),
        kind="message.business_ack_received",
        severity=Severity.INFO,
        mailbox_id=original.mailbox_id,
        message_id=original.pk,
        workflow=original.workflow_id,
        summary=f"{ack.sender} has now sent the business acknowledgement of message "
        f"{original.mesh_message_id or original.pk}.",
    )
    return original


def _expected(now) -> list[tuple[Workflow, timedelta]]:
    rules = Workflow.objects.filter(
        direction=Workflow.Direction.SEND, business_ack_hours__isnull=False
    )
    return [(rule, timedelta(hours=rule.business_ack_hours)) for rule in rules]


@transaction.atomic
def business_acks_check_overdue(*, now=None) -> int:
    """Raise one event per sent message whose business acknowledgement is overdue."""
    now = now or timezone.now()
    raised = 0
    for rule, within in _expected(now):
        overdue = Message.objects.filter(
            mailbox_id=rule.mailbox_id,
            direction=Direction.OUTBOUND,
            workflow_id=rule.workflow_id,
            status__in=[Status.ACCEPTED, Status.ACKNOWLEDGED],
            business_ack_overdue_at__isnull=True,
            accepted_at__lte=now - within,
            accepted_at__gte=now - WATCH_FOR,
            business_acks__isnull=True,
        )
        for message in overdue[:500]:
            raised += _raise_overdue(message, within, now)
    return raised


def _raise_overdue(message: Message, within: timedelta, now) -> int:
    hours = f"{within / timedelta(hours=1):g}"
    Message.objects.filter(pk=message.pk).update(business_ack_overdue_at=now)
    message.add_event(
        MessageEvent.Kind.BUSINESS_ACK, f"No business acknowledgement within {hours} hours"
    )
    problem_raise(
        problem_key=problem_key(message),
        kind="message.business_ack_overdue",
        severity=Severity.WARNING,
        mailbox_id=message.mailbox_id,
        message_id=message.pk,
        workflow=message.workflow_id,
        summary=f"{message.recipient_display()} has not sent a business acknowledgement "
        f"({message.workflow_id}{ACK_SUFFIX}) of message {message.mesh_message_id or message.pk} "
        f"within the {hours} hours expected.",
        data={
            "mesh_message_id": message.mesh_message_id or "",
            "local_id": message.local_id,
            "expected_hours": hours,
        },
    )
    record(
        actor=Actor.worker(),
        action="message.business_ack_overdue",
        obj=message,
        detail=f"expected within {hours} h",
    )
    return 1
