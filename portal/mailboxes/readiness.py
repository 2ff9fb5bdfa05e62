"""The readiness gate: whether a mailbox may transfer messages now.

The workers ask before every send and poll. A disabled mailbox never transfers. A live mailbox also
waits for its organisation's live onboarding plan and an active certificate with its CN, unless an
admin has overridden the gate (portal.onboarding.gate).
"""

from __future__ import annotations

from .models import Mailbox


def transfer_blocked_reason(mailbox: Mailbox) -> str | None:
    """None when the mailbox may transfer; otherwise why not, in plain English."""
    if not mailbox.enabled:
        return f"mailbox {mailbox.mailbox_id} is disabled"
    if mailbox.is_live:
        # Imported here: onboarding's models depend on this app's, never the other way round.
        from portal.onboarding.gate import live_gate_reason

        return live_gate_reason(mailbox)
    return None
