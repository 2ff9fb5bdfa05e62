"""Putting mailboxes' work on the queue: the task path and the enqueue helper, in one place."""

from __future__ import annotations

from django_q.tasks import async_task

HANDSHAKE_TASK = "portal.mailboxes.tasks.handshake_mailbox"


def enqueue_handshake(mailbox_pk: int) -> str:
    return async_task(HANDSHAKE_TASK, mailbox_pk, group="handshake")
