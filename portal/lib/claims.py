"""Keeping a claim on work alive while a long transfer runs.

The lease (`OUTBOX_CLAIM_LEASE_SECONDS`, `POLL_CLAIM_LEASE_SECONDS`) is how long a claim may go
unrefreshed before another worker may take it over. It is measured against this heartbeat, which
runs on its own thread, not against the transfer: meshcore's retries (up to `max_retries` waits of
at most `max_retry_after` seconds each, several minutes in all) hold up only the transfer thread,
and the claim stays fresh meanwhile. So the lease needs only to outlast gaps between successful
beats (a worker that died, or a database that refused several beats in a row), and the beat runs
four times per lease so one or two failed beats never cost the claim.

The transfer thread learns that the claim is gone from `lost`, which it checks before each upload
and between inbox messages: a transfer stuck in a long retry notices at its next step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

log = logging.getLogger(__name__)


class ClaimHeartbeat(threading.Thread):
    """Calls `refresh` every `every` seconds until stopped; `lost` is set when the claim is gone.

    A refresh is a conditional update ("still mine? then touch claimed_at"), so a worker that has
    lost its claim to another finds out at the next beat. A refresh that fails (the database is
    locked or unreachable) says nothing about the claim: it is logged and the beat goes on.
    """

    def __init__(self, refresh: Callable[[], bool], every: float, name: str = "claim-heartbeat"):
        super().__init__(daemon=True, name=name)
        self.refresh, self.every = refresh, every
        self.stopped = threading.Event()
        self.lost = False
        self.failures = 0

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                if not self._beat():
                    self.lost = True
                    return
        finally:
            connection.close()

    def _beat(self) -> bool:
        """False only when the refresh says the claim belongs to someone else now."""
        try:
            still_mine = self.refresh()
        except Exception as exc:  # noqa: BLE001 - a failed beat must not stop the heartbeat
            self.failures += 1
            log.warning(
                "%s: could not refresh the claim (%s: %s); trying again in %.0f s",
                self.name,
                type(exc).__name__,
                exc,
                self.every,
            )
            # A broken connection is replaced at the next beat rather than failing for ever.
            connection.close_if_unusable_or_obsolete()
            return True
        return bool(still_mine)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)

    def __enter__(self) -> ClaimHeartbeat:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
