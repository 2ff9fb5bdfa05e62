"""Every kind of event NeoMesh raises: `event_emit` refuses a kind not listed here.

Add a kind here (and to the Kinds table in README.md, which a test compares) before emitting it.
"""

from __future__ import annotations

from django.db import models


class Severity(models.TextChoices):
    INFO = "info", "Information"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


# Ordered from least to most severe, for "this severity or worse" filters.
SEVERITY_ORDER = [Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL]

KINDS: dict[str, str] = {
    "message.received": "A message was received from MESH and stored",
    "message.receive_failed": "An inbound message could not be received; it will be tried again",
    "message.quarantined": "An inbound message failed repeatedly (or past a limit): needs a person",
    "message.quarantine_resolved": "A quarantined inbound message was received or left in MESH",
    "message.ndr": "A non-delivery report arrived for a message we sent",
    "message.send_failed": "A message could not be sent",
    "message.send_uncertain": "A send's outcome is unknown (MESH may have it)",
    "message.acknowledged": "The recipient downloaded and acknowledged a message we sent",
    "message.inbound_expiring": "A received message is near MESH's 5-day limit unacknowledged",
    "message.inbound_acknowledged": "A received message near MESH's limit is acknowledged at last",
    "message.ack_overdue": "A sent message was not acknowledged within its expected time",
    "message.business_ack_overdue": "A sent message's business acknowledgement (_ACK) is overdue",
    "message.business_ack_received": "An overdue business acknowledgement arrived",
    "mailbox.poll_failing": "A mailbox's polls have been failing for longer than the threshold",
    "mailbox.poll_recovered": "A mailbox's polls succeed again",
    "mailbox.handshake_failing": "A mailbox's handshake with MESH failed",
    "mailbox.handshake_recovered": "A mailbox's handshake succeeds again",
    "certificate.expiring": "A certificate expires within 90, 30, 14, 7 or 1 days",
    "certificate.expired": "A certificate has expired",
    "certificate.replaced": "An expiring or expired certificate was replaced",
    "audit.chain_broken": "The audit chain verification failed",
    "audit.chain_intact": "The audit chain verifies again",
    "onboarding.task_overdue": "A go-live task is past its due date",
    "onboarding.task_done": "An overdue go-live task was done",
    "onboarding.letter_overdue": "A letter to NHS England has had no reply within its turnaround",
    "onboarding.letter_answered": "An overdue letter was answered",
    "alerts.test": "A test alert sent by a person from the alerts pages",
}


def choices() -> list[tuple[str, str]]:
    return [(kind, f"{kind}: {text}") for kind, text in KINDS.items()]


def severity_at_least(severity: str) -> list[str]:
    """This severity and every worse one."""
    return [str(s) for s in SEVERITY_ORDER[SEVERITY_ORDER.index(severity) :]]
