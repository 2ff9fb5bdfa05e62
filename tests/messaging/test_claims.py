"""The heartbeat that keeps a transfer's claim alive."""

from __future__ import annotations

import time

from django.db import OperationalError

from portal.lib.claims import ClaimHeartbeat


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_it_keeps_beating_through_database_errors():
    calls = []

    def refresh() -> bool:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise OperationalError("database is locked")
        return True

    with ClaimHeartbeat(refresh, 0.01) as heartbeat:
        assert wait_for(lambda: len(calls) >= 5)
        assert heartbeat.is_alive() and not heartbeat.lost
    assert heartbeat.failures == 2 and not heartbeat.lost


def test_it_says_the_claim_is_lost_when_someone_else_has_it():
    with ClaimHeartbeat(lambda: False, 0.01) as heartbeat:
        assert wait_for(lambda: heartbeat.lost)
        assert wait_for(lambda: not heartbeat.is_alive())
