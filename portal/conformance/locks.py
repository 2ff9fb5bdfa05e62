"""Keeping the portal's poller away from both mailboxes while a run uses them.

A run receives into the mailbox and into the peer. If the normal poller drained either inbox at the
same time it would download and acknowledge the run's messages (the scenario would then never see
them) and store them in the message log as if they were real traffic. So a run takes the same claim
a poll takes (`Mailbox.poll_claimed_at/by`, see `MailboxQuerySet.claim_poll`) on both
mailboxes for its whole duration, refreshed by a heartbeat: polls skip a claimed mailbox ("another
poll of this mailbox is running") and a second run on the same mailbox is refused the same way.

The run's own row is kept alive the same way (`run_kept_alive`): the sweep (`services.runs_sweep`)
gives up on a running run whose heartbeat has gone quiet. Either claim can be lost (the lease lapsed
because the database was unreachable, or the sweep gave up on the run); `Lease.lost` says so and the
run checks it between scenarios and inside long ones.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from portal.lib.claims import ClaimHeartbeat
from portal.mailboxes.models import Mailbox

from .models import ConformanceRun, RunStatus, stale_after

log = logging.getLogger(__name__)

# How long a run waits for a poll that is under way to finish before giving up.
DEFAULT_WAIT_SECONDS = 30


class MailboxBusy(Exception):
    """A poll or another run holds one of the mailboxes."""


def _lease() -> timedelta:
    return timedelta(seconds=settings.POLL_CLAIM_LEASE_SECONDS)


def _claim(mailbox: Mailbox, owner: str) -> bool:
    return bool(Mailbox.objects.filter(pk=mailbox.pk).claim_poll(owner, lease=_lease()))


def _release(mailboxes: list[Mailbox], owner: str) -> None:
    Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes]).release_poll_claim(owner)


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


class Lease:
    """A claim renewed by a ClaimHeartbeat every quarter of its lease; `lost` once it may be gone.

    Lost when a renewal found the claim taken, and also when no renewal has succeeded for most of
    the lease (the database is unreachable, or the heartbeat thread died): by then another worker
    may take the claim, so the holder must not count on it.
    """

    def __init__(self, renew: Callable[[], bool], lease: timedelta, name: str):
        self.seconds = lease.total_seconds()
        self.every = max(1.0, self.seconds / 4)
        self.renewed = time.monotonic()
        self.taken = False
        self._renew = renew
        self.heartbeat = ClaimHeartbeat(self._beat, self.every, name=name)

    def _beat(self) -> bool:
        try:
            ours = self._renew()
        except DatabaseError:
            # Try again at the next beat; `lost` turns true if the outage outlasts the lease.
            log.warning("Could not renew %s", self.heartbeat.name, exc_info=True)
            return True
        if ours:
            self.renewed = time.monotonic()
        else:
            self.taken = True
        return ours

    @property
    def lost(self) -> bool:
        quiet = time.monotonic() - self.renewed
        limit = max(self.seconds - self.every, 2 * self.every)
        return self.taken or self.heartbeat.lost or quiet > limit

    def __enter__(self) -> Lease:
        self._running = contextlib.ExitStack()
        self._running.enter_context(self.heartbeat)
        return self

    def __exit__(self, *exc) -> None:
        self._running.close()


@contextlib.contextmanager
def mailboxes_claimed(mailboxes: list[Mailbox], owner: str) -> Iterator[Lease]:
    """Hold the poll claim of every mailbox until the block ends; raises MailboxBusy."""
    wait = getattr(settings, "CONFORMANCE_CLAIM_WAIT_SECONDS", DEFAULT_WAIT_SECONDS)
    _claim_all(mailboxes, owner, wait)

    def still_ours() -> bool:
        updated = Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes]).refresh_poll_claim(owner)
        return updated == len(mailboxes)

    try:
        with Lease(still_ours, _lease(), name=f"{owner} mailboxes") as lease:
            yield lease
    finally:
        _release(mailboxes, owner)


def unclaimed(mailboxes: list[Mailbox], owner: str) -> list[str]:
    """The ids of those mailboxes whose poll claim is no longer this owner's."""
    pks = [m.pk for m in mailboxes]
    theirs = Mailbox.objects.filter(pk__in=pks).exclude(poll_claimed_by=owner)
    return sorted(theirs.values_list("mailbox_id", flat=True))


def run_kept_alive(run_id: int, owner: str) -> Lease:
    """A heartbeat on the run's row while this worker runs it (the sweep watches it)."""

    def still_ours() -> bool:
        return bool(
            ConformanceRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, worker=owner).update(
                heartbeat_at=timezone.now()
            )
        )

    return Lease(still_ours, stale_after(), name=f"{owner} heartbeat")
