"""Worker entry points (django-q2): thin, take ids, call a service. Safe to run twice."""

from __future__ import annotations

from django.conf import settings
from django_q.tasks import async_task

from portal.audit.services import audit_worker_action
from portal.mailboxes.models import Mailbox
from portal.ops.models import Heartbeat

from . import acks, inbox, notices, outbox, services
from .models import Message


def enqueue_send(message_pk: int) -> str:
    return async_task("portal.messaging.tasks.send_message", message_pk, group="send")


def enqueue_send_unless_pending(message) -> str | None:
    """Enqueue a send for a message just queued, unless enough tasks already pending will send it.

    A send task sends its mailbox's other due messages too (OUTBOX_CONCURRENCY at once), so while
    that many earlier messages of the mailbox wait unclaimed, their tasks are still to run and will
    take this one: a burst of 500 queued messages makes a few tasks (which several workers or hosts
    can share), not 500 that each find their message sent. The outbox sweep (every minute) sends
    anything a task did not.
    """
    width = settings.OUTBOX_CONCURRENCY
    if width > 1:
        waiting = Message.objects.sendable().filter(
            mailbox_id=message.mailbox_id, attempts=0, pk__lt=message.pk
        )
        if len(waiting.values_list("pk", flat=True)[:width]) >= width:
            return None
    return enqueue_send(message.pk)


def enqueue_poll(mailbox_pk: int) -> str:
    return async_task("portal.messaging.tasks.poll_mailbox", mailbox_pk, group="poll")


def send_message(message_pk: int) -> dict:
    """Send this message and the mailbox's other due ones, OUTBOX_CONCURRENCY at once."""
    return outbox.outbox_send_with_due(message_id=message_pk)


def poll_mailbox(mailbox_pk: int) -> str:
    mailbox = Mailbox.objects.get(pk=mailbox_pk)
    result = inbox.mailbox_poll(mailbox=mailbox)
    if result.errors:  # each download and acknowledgement has its own record already
        audit_worker_action(action="mailbox.poll_failed", obj=mailbox, detail=result.summary())
    return result.summary()


def poll_due() -> int:
    """Scheduled every minute: enqueue a poll for each mailbox whose interval has passed."""
    Heartbeat.beat("poll_due", outbox.worker_name())
    due = Mailbox.objects.due_for_poll()
    for mailbox in due:
        enqueue_poll(mailbox.pk)
    return len(due)


def sweep_outbox() -> dict:
    Heartbeat.beat("sweep_outbox", outbox.worker_name())
    return outbox.outbox_sweep()


def check_overdue() -> dict:
    """Scheduled hourly: raise events for messages near MESH's limit or not acknowledged in time."""
    return notices.messages_check_overdue()


def refresh_tracking() -> int:
    count = 0
    for message in services.messages_to_track().select_related("mailbox")[:200]:
        services.message_refresh_tracking(message=message)
        count += 1
    return count


def check_business_acks() -> int:
    """Scheduled every 15 minutes: raise overdue business acknowledgements."""
    return acks.business_acks_check_overdue()


def purge_payloads() -> str:
    """Scheduled hourly: purge payloads past their retention rule (see retention.py)."""
    from .retention import retention_sweep

    result = retention_sweep()
    text = f"{result['purged']} payloads purged"
    if result["failed"]:
        text += f"; {len(result['failed'])} could not be removed: {result['failed'][0]}"
    return text
