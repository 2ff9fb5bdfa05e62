"""Keeping the portal's poller away from both mailboxes while a run uses them.

A run receives into the mailbox and into the peer. If the normal poller drained either inbox at the
same time it would download and acknowledge the run's messages (the scenario would then never see
them) and store them in the message log as if they were real traffic. So a run takes the same claim
a poll takes (`Mailbox.poll_claimed_at/by`, see portal/messaging/inbox.py `_claim_poll`) on both
mailboxes for its whole duration, refreshed by a heartbeat: polls skip a claimed mailbox ("another
poll of this mailbox is running") and a second run on the same mailbox is refused the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.lib.claims import ClaimHeartbeat
from portal.mailboxes.models import Mailbox

# How long a run waits for a poll that is under way to finish before giving up.
DEFAULT_WAIT_SECONDS = 30


class MailboxBusy(Exception):
    """A poll or another run holds one of the mailboxes."""


def _lease() -> timedelta:
    return timedelta(seconds=settings.POLL_CLAIM_LEASE_SECONDS)


def _claim(mailbox: Mailbox, owner: str) -> bool:
    now = timezone.now()
    free = Q(poll_claimed_at__isnull=True) | Q(poll_claimed_at__lt=now - _lease())
    return bool(
        Mailbox.objects.filter(pk=mailbox.pk)
        .filter(free)
        .update(poll_claimed_at=now, poll_claimed_by=owner)
    )


def _release(mailboxes: list[Mailbox], owner: str) -> None:
    Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes], poll_claimed_by=owner).update(
        poll_claimed_at=None, poll_claimed_by=""
    )


def _claim_all(mailboxes: list[Mailbox], owner: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    held: list[Mailbox] = []
    for mailbox in mailboxes:
        while not _claim(mailbox, owner):
            if time.monotonic() >= deadline:
                _release(held, owner)
                holder = Mailbox.objects.filter(pk=mailbox.pk).values_list(
                    "poll_claimed_by", flat=True
                )[0]
                what = "another conformance run" if holder.startswith("conformance") else "a poll"
                raise MailboxBusy(
                    f"{mailbox.mailbox_id} is busy ({what} holds it); try again in a few minutes."
                )
            time.sleep(1)
        held.append(mailbox)


@contextlib.contextmanager
def mailboxes_claimed(mailboxes: list[Mailbox], owner: str) -> Iterator[ClaimHeartbeat]:
    """Hold the poll claim of every mailbox until the block ends; raises MailboxBusy."""
    wait = getattr(settings, "CONFORMANCE_CLAIM_WAIT_SECONDS", DEFAULT_WAIT_SECONDS)
    _claim_all(mailboxes, owner, wait)

    def still_ours() -> bool:
        updated = Mailbox.objects.filter(
            pk__in=[m.pk for m in mailboxes], poll_claimed_by=owner
        ).update(poll_claimed_at=timezone.now())
        return updated == len(mailboxes)

    try:
        with ClaimHeartbeat(still_ours, max(1.0, _lease().total_seconds() / 4)) as heartbeat:
            yield heartbeat
    finally:
        _release(mailboxes, owner)
