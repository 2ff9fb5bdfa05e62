"""Keeping a claim on work alive while a long transfer runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


class ClaimHeartbeat(threading.Thread):
    """Calls `refresh` every `every` seconds until stopped; `lost` is set when a refresh fails.

    A refresh is a conditional update ("still mine? then touch claimed_at"), so a worker that has
    lost its claim to another finds out at the next beat.
    """

    def __init__(self, refresh: Callable[[], bool], every: float, name: str = "claim-heartbeat"):
        super().__init__(daemon=True, name=name)
        self.refresh, self.every = refresh, every
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                if not self.refresh():
                    self.lost = True
                    return
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)

    def __enter__(self) -> ClaimHeartbeat:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
