"""Putting messaging's work on the queue: the task paths and the enqueue helpers, in one place.

Services, the outbox sweep, the pages and the scheduler enqueue through here; `tasks.py` holds the
entry points the workers run and imports the services, never the reverse (no file circle).
"""

from __future__ import annotations

from django_q.tasks import async_task

SEND_TASK = "portal.messaging.tasks.send_message"
POLL_TASK = "portal.messaging.tasks.poll_mailbox"


def enqueue_send(message_pk: int) -> str:
    return async_task(SEND_TASK, message_pk, group="send")


def enqueue_poll(mailbox_pk: int) -> str:
    return async_task(POLL_TASK, mailbox_pk, group="poll")
