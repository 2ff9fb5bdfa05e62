"""Secrets never go into notes or emails: NHS England needs the CSR, never the key or a password."""

from __future__ import annotations

import re

from portal.mailboxes.models import Environment, Organisation

PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# Short or all-letter values ("password") match ordinary words too often to be worth the alarm.
MIN_SECRET_LENGTH = 8


def _distinctive(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and not value.isalpha()


def secret_problem(text: str, organisation: Organisation | None = None) -> str | None:
    """Why this text must not be kept or sent (it holds a key or a mailbox secret), or None.

    Sandbox mailboxes are skipped: their password and shared key are public test values.
    """
    if PRIVATE_KEY_RE.search(text or ""):
        return (
            "It contains a private key. Never paste or send a private key: NHS England needs only "
            "the CSR, and the key stays encrypted in NeoMesh."
        )
    if organisation is None or not text:
        return None
    mailboxes = organisation.mailboxes.exclude(environment=Environment.SANDBOX).only(
        "mailbox_id", "password", "shared_key"
    )
    for mailbox in mailboxes:
        for label, value in (("password", mailbox.password), ("shared key", mailbox.shared_key)):
            if value and _distinctive(value) and value in text:
                return (
                    f"It contains the {label} of mailbox {mailbox.mailbox_id}. Remove it: secrets "
                    "stay in the mailbox's encrypted fields, never in notes or emails."
                )
    return None
