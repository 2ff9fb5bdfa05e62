"""Worker entry points for events: thin, safe to run twice or on every worker at once."""

from __future__ import annotations

from .services import events_dispatch, events_purge


def dispatch() -> dict:
    """Scheduled every minute: publish what committed, then feed each consumer."""
    return events_dispatch()


def purge() -> int:
    """Scheduled daily."""
    return events_purge()
