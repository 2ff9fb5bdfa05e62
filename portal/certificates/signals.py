"""Facts about certificates that apps above listen for (they may import this app; it cannot import them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that stores a new key and CSR: certificate.
csr_created = Signal()
