"""Putting mailboxes' work on the queue: the task path and the enqueue helper, in one place."""

from __future__ import annotations

from portal.lib.taskqueue import enqueue

HANDSHAKE_TASK = "portal.mailboxes.tasks.handshake_mailbox"


def enqueue_handshake(mailbox_pk: int) -> str:
    return enqueue(HANDSHAKE_TASK, mailbox_pk, group="handshake")
