"""Putting messaging's work on the queue: the task paths and the enqueue helpers, in one place.

Services, the outbox sweep, the pages and the scheduler enqueue through here; `tasks.py` holds the
entry points the workers run and imports the services, never the reverse (no file circle).
"""

from __future__ import annotations

from django.conf import settings

from portal.lib.taskqueue import enqueue

SEND_TASK = "portal.messaging.tasks.send_message"
POLL_TASK = "portal.messaging.tasks.poll_mailbox"


def enqueue_send(message_pk: int) -> str:
    return enqueue(SEND_TASK, message_pk, group="send")


def enqueue_send_unless_pending(message) -> str | None:
    """Enqueue a send for a message just queued, unless enough tasks already pending will send it.

    A send task sends its mailbox's other due messages too (OUTBOX_CONCURRENCY at once), so while
    that many earlier messages of the mailbox wait unclaimed, their tasks are still to run and will
    take this one: a burst of 500 queued messages makes a few tasks (which several workers or hosts
    can share), not 500 that each find their message sent. The outbox sweep (every minute) sends
    anything a task did not.
    """
    from .models import Message

    width = settings.OUTBOX_CONCURRENCY
    if width > 1:
        waiting = Message.objects.sendable().filter(
            mailbox_id=message.mailbox_id, attempts=0, pk__lt=message.pk
        )
        if len(waiting.values_list("pk", flat=True)[:width]) >= width:
            return None
    return enqueue_send(message.pk)


def enqueue_poll(mailbox_pk: int) -> str:
    return enqueue(POLL_TASK, mailbox_pk, group="poll")
