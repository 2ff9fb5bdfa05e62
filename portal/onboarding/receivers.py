"""Facts recorded by the apps below (which cannot import this one) complete the tasks that wait
for them (`selfcheck.py`), inside the transaction that records the fact."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from portal.certificates.signals import csr_created
from portal.mailboxes.signals import handshake_succeeded

from . import selfcheck
from .models import AllowListEntry


@receiver(handshake_succeeded, dispatch_uid="onboarding_handshake_succeeded")
def on_handshake_succeeded(sender, mailbox, **kwargs) -> None:
    selfcheck.handshake_recorded(mailbox=mailbox)


@receiver(csr_created, dispatch_uid="onboarding_csr_created")
def on_csr_created(sender, certificate, **kwargs) -> None:
    selfcheck.csr_recorded(certificate=certificate)


@receiver(post_save, sender=AllowListEntry, dispatch_uid="onboarding_allowlist_recorded")
def on_allowlist_entry_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if created and not raw:
        selfcheck.allowlist_recorded(entry=instance)
