"""Worker entry points for mailboxes."""

from __future__ import annotations

from portal.audit.services import Actor, record

from .enqueue import enqueue_handshake
from .models import Mailbox
from .services import mailbox_handshake


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
