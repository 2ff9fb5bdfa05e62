"""Inbound messages that could not be received: backed off, then quarantined for a person.

A message whose receipt fails (over a size limit, a bad checksum, a body that is not gzip, a
database refusal) is that message's failure only: the poll records it here and carries on with
the rest of the inbox. The message stays in MESH, unacknowledged. The next attempts wait longer
each time (``MESH_INBOUND_RETRY_SECONDS``, doubling, at most ``MESH_INBOUND_RETRY_MAX_SECONDS``);
after ``MESH_INBOUND_QUARANTINE_AFTER`` failures, or at once when a limit refuses it (the next
download would be refused the same way), it is quarantined: not downloaded again until a person
retries it, or leaves it in MESH (which expires it after 5 days and tells its sender).
Every step is audited; the mailbox page and the message log show what is held and why.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit.services import Actor, record
from portal.events.kinds import Severity
from portal.events.services import event_emit, problem_raise, problem_resolve
from portal.mailboxes.models import Mailbox

from .models import InboundFailure

State = InboundFailure.State
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_ID_LENGTH = InboundFailure._meta.get_field("mesh_message_id").max_length


def failure_key(mesh_id: object) -> str:
    """The id a failure is stored under: MESH's id, made safe to store (bounded, printable)."""
    return _UNPRINTABLE.sub("?", str(mesh_id))[:_ID_LENGTH]


def open_failures(mailbox: Mailbox) -> dict[str, InboundFailure]:
    """The mailbox's failures not yet resolved, by failure_key (one query per poll)."""
    return {failure.mesh_message_id: failure for failure in mailbox.inbound_failures.open()}


HELD_SHOWN = 50


def held_inbound(mailbox: Mailbox | None = None, *, user=None) -> list[InboundFailure]:
    """Inbound messages waiting in MESH after failures (quarantined first), for a panel; those of
    one mailbox, or of every mailbox within `user`'s reach."""
    rows = InboundFailure.objects.open().select_related("mailbox")
    if user is not None:
        rows = rows.within_reach(user)
    if mailbox is not None:
        rows = rows.filter(mailbox=mailbox)
    rows = rows.exclude(status=InboundFailure.State.LEFT)
    return sorted(rows[:HELD_SHOWN], key=lambda row: row.status != InboundFailure.State.QUARANTINED)


def retry_delay(failures: int) -> timedelta:
    base = settings.MESH_INBOUND_RETRY_SECONDS
    seconds = min(settings.MESH_INBOUND_RETRY_MAX_SECONDS, base * 2 ** max(0, failures - 1))
    return timedelta(seconds=seconds)


@transaction.atomic
def inbound_failure_record(
    *,
    mailbox: Mailbox,
    mesh_id: str,
    reason: str,
    quarantine: bool = False,
    may_quarantine: bool = True,
) -> InboundFailure:
    """One more failed attempt at receiving ``mesh_id``: back it off, or quarantine it.

    ``quarantine``: at once (a limit refused it). ``may_quarantine=False``: only back it off,
    however often it failed (MESH failing to serve it is not proof the message is bad)."""
    now = timezone.now()
    failure, _ = InboundFailure.objects.select_for_update().get_or_create(
        mailbox=mailbox,
        mesh_message_id=failure_key(mesh_id),
        defaults={"reason": reason, "first_failed_at": now},
    )
    failure.failures += 1
    failure.reason = reason[:4000]
    failure.last_failed_at = now
    failure.resolved_by = None
    failure.resolved_at = None
    repeated = may_quarantine and failure.failures >= settings.MESH_INBOUND_QUARANTINE_AFTER
    if quarantine or repeated:
        failure.status, failure.next_attempt_at = State.QUARANTINED, None
        action = "message.quarantined"
        detail = (
            f"{failure.mesh_message_id}: not received ({failure.failures} attempt(s)): {reason}. "
            "Left in MESH, not downloaded again until a person retries it."
        )
    else:
        failure.status = State.BACKING_OFF
        failure.next_attempt_at = now + retry_delay(failure.failures)
        action = "message.receive_failed"
        detail = (
            f"{failure.mesh_message_id}: not received (attempt {failure.failures}): {reason}. "
            f"Next attempt after {failure.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC."
        )
    failure.save()
    record(actor=Actor.worker(), action=action, obj=mailbox, detail=detail)
    event = {
        "summary": f"{mailbox.mailbox_id}: inbound message {failure.mesh_message_id} {detail}",
        "mailbox_id": mailbox.pk,
        "data": {
            "mesh_message_id": failure.mesh_message_id,
            "reason": failure.reason[:1000],
            "failures": failure.failures,
        },
    }
    if not may_quarantine:
        return failure  # MESH failing: its own alert (mailbox.poll_failing) says so, once
    if failure.status == State.QUARANTINED:
        problem_raise(
            problem_key=_problem(failure),
            kind="message.quarantined",
            severity=Severity.ERROR,
            **event,
        )
    else:
        event_emit(kind="message.receive_failed", severity=Severity.WARNING, **event)
    return failure


def _problem(failure: InboundFailure) -> str:
    return f"inbound:{failure.pk}"


def _resolved(failure: InboundFailure, how: str) -> None:
    problem_resolve(
        problem_key=_problem(failure),
        kind="message.quarantine_resolved",
        severity=Severity.INFO,
        mailbox_id=failure.mailbox_id,
        summary=f"Inbound message {failure.mesh_message_id} {how}",
        data={"mesh_message_id": failure.mesh_message_id},
    )


@transaction.atomic
def inbound_failure_received(*, failure: InboundFailure) -> None:
    """The message was received after all (a later attempt, or a person's retry)."""
    InboundFailure.objects.filter(pk=failure.pk).update(
        status=State.RECEIVED, next_attempt_at=None, resolved_at=timezone.now()
    )
    _resolved(failure, "was received after all")


@transaction.atomic
def inbound_failure_retry(*, failure: InboundFailure, actor: Actor) -> None:
    """A person asks for one more attempt at the next poll (a failure then quarantines again)."""
    failure.status, failure.next_attempt_at = State.BACKING_OFF, timezone.now()
    failure.resolved_by, failure.resolved_at = actor.user, timezone.now()
    failure.save(update_fields=["status", "next_attempt_at", "resolved_by", "resolved_at"])
    record(
        actor=actor,
        action="message.quarantine_retry",
        obj=failure.mailbox,
        detail=f"{failure.mesh_message_id}: retry at the next poll (last failure: {failure.reason})",
    )


@transaction.atomic
def inbound_failure_leave(*, failure: InboundFailure, actor: Actor) -> None:
    """A person decides not to receive it: it stays in MESH, which expires it and tells its sender."""
    failure.status, failure.next_attempt_at = State.LEFT, None
    failure.resolved_by, failure.resolved_at = actor.user, timezone.now()
    failure.save(update_fields=["status", "next_attempt_at", "resolved_by", "resolved_at"])
    record(
        actor=actor,
        action="message.quarantine_left",
        obj=failure.mailbox,
        detail=f"{failure.mesh_message_id}: left in MESH, not received (reason: {failure.reason})",
    )
    _resolved(failure, f"was left in MESH by {actor.label}")
