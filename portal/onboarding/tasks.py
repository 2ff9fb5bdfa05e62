"""Worker entry points for onboarding."""

from __future__ import annotations

from .watch import onboarding_check_overdue


def check_overdue() -> dict:
    """Scheduled daily."""
    return onboarding_check_overdue()
