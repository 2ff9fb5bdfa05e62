"""The readiness gate: whether a mailbox may transfer messages now."""

from __future__ import annotations

from .models import Mailbox


def transfer_blocked_reason(mailbox: Mailbox) -> str | None:
    """None when the mailbox may transfer; otherwise why not, in plain English."""
    if not mailbox.enabled:
        return f"mailbox {mailbox.mailbox_id} is disabled"
    return None
