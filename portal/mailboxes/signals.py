"""Facts about mailboxes that apps above listen for (they may import this app; it cannot import them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that records a successful handshake: mailbox, elapsed_ms.
handshake_succeeded = Signal()
