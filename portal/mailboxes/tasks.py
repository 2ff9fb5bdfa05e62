"""Worker entry points for mailboxes."""

from __future__ import annotations

from django_q.tasks import async_task

from portal.audit.services import Actor, record

from .models import Mailbox
from .services import mailbox_handshake


def enqueue_handshake(mailbox_pk: int) -> str:
    return async_task("portal.mailboxes.tasks.handshake_mailbox", mailbox_pk, group="handshake")


def handshake_mailbox(mailbox_pk: int) -> str:
    ok, summary = mailbox_handshake(mailbox=(mailbox := Mailbox.objects.get(pk=mailbox_pk)))
    record(actor=Actor.worker(), action="mailbox.handshake", obj=mailbox, detail=summary)
    return summary


def handshake_all() -> int:
    """Scheduled daily: MESH expects a handshake from every mailbox at least once a day."""
    mailboxes = list(Mailbox.objects.enabled())
    for mailbox in mailboxes:
        enqueue_handshake(mailbox.pk)
    return len(mailboxes)
