from __future__ import annotations

from django.core.management.base import CommandError

from portal.mailboxes.models import Mailbox


def get_mailbox(mailbox_id: str) -> Mailbox:
    try:
        return Mailbox.objects.select_related("organisation").get(
            mailbox_id=mailbox_id.strip().upper()
        )
    except Mailbox.DoesNotExist:
        known = ", ".join(Mailbox.objects.values_list("mailbox_id", flat=True)[:20]) or "none yet"
        raise CommandError(f"No mailbox {mailbox_id!r} in NeoMesh (known: {known}).") from None
