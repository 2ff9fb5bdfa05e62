from __future__ import annotations

from .services import certificates_check_expiry


def check_expiry() -> dict:
    """Scheduled daily."""
    return certificates_check_expiry()
