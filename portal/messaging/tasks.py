"""Worker entry points (django-q2): thin, take ids, call a service. Safe to run twice."""

from __future__ import annotations

from portal.audit.services import Actor, record
from portal.lib.workers import worker_name
from portal.mailboxes.models import Mailbox

from . import acks, inbox, notices, outbox, services
from .enqueue import enqueue_poll
from .models import Heartbeat


def send_message(message_pk: int) -> dict:
    """Send this message and the mailbox's other due ones, OUTBOX_CONCURRENCY at once."""
    return outbox.outbox_send_with_due(message_id=message_pk)


def poll_mailbox(mailbox_pk: int) -> str:
    mailbox = Mailbox.objects.get(pk=mailbox_pk)
    result = inbox.mailbox_poll(mailbox=mailbox)
    if result.errors:  # each download and acknowledgement has its own record already
        record(
            actor=Actor.worker(), action="mailbox.poll_failed", obj=mailbox, detail=result.summary()
        )
    return result.summary()


def poll_due() -> int:
    """Scheduled every minute: enqueue a poll for each mailbox whose interval has passed."""
    Heartbeat.beat("poll_due", worker_name())
    due = Mailbox.objects.due_for_poll()
    for mailbox in due:
        enqueue_poll(mailbox.pk)
    return len(due)


def sweep_outbox() -> dict:
    Heartbeat.beat("sweep_outbox", worker_name())
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
