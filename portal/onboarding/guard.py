"""Secrets never go into notes or emails: NHS England needs the CSR, never the key or a password.

The guard compares a text with the organisation's stored mailbox secrets, so its answer is itself
secret: a refusal that named the mailbox, or one that anyone could ask for without limit, would let a
person test guesses of a live password (many in one note). So:

- every refusal is the same words, whatever was found (a key, a password, a shared key, whose);
- a person whose texts were refused `SECRET_GUARD_REFUSALS` times, or checked `SECRET_GUARD_CHECKS`
  times, within `SECRET_GUARD_WINDOW_MINUTES` gets that same refusal for every text until the window
  has passed: from outside, a locked guard and a found secret look alike;
- each refusal is audited (`onboarding.secret_refused`, what was refused, never the text), and a lock
  once per window (`onboarding.secret_guard_locked`).

Refusals are counted from the audit trail (every web and worker process sees them); checks in
Django's cache (per process without Redis, shared with it).
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.mailboxes.models import Environment, Organisation

PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# Short or all-letter values ("password") match ordinary words too often to be worth the alarm.
MIN_SECRET_LENGTH = 8
REFUSAL = (
    "NeoMesh will not keep or send this text: it may contain a secret (a private key, a password "
    "or a shared key), or too many of your texts were refused recently. Remove any secret and try "
    "again later; secrets stay in NeoMesh's encrypted fields, and NHS England needs only the CSR."
)
REFUSED, LOCKED = "onboarding.secret_refused", "onboarding.secret_guard_locked"


def _distinctive(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and not value.isalpha()


def contains_secret(text: str, organisation: Organisation | None = None) -> bool:
    """Whether the text holds a private key or a stored secret of the organisation's mailboxes.

    Sandbox mailboxes are skipped: their password and shared key are public test values.
    """
    if PRIVATE_KEY_RE.search(text or ""):
        return True
    if organisation is None or not text:
        return False
    mailboxes = organisation.mailboxes.exclude(environment=Environment.SANDBOX).only(
        "password", "shared_key"
    )
    return any(
        value and _distinctive(value) and value in text
        for mailbox in mailboxes
        for value in (mailbox.password, mailbox.shared_key)
    )


def secret_problem(text: str, organisation: Organisation | None = None) -> str | None:
    """The one refusal when the text holds a secret, else None. Not limited: use `secret_refusal`
    for text a person submits."""
    return REFUSAL if contains_secret(text, organisation) else None


def _window() -> timedelta:
    return timedelta(minutes=settings.SECRET_GUARD_WINDOW_MINUTES)


def _checks_key(user) -> str:
    return f"onboarding:secret-guard-checks:{user.pk}"


def _is_locked(user, since) -> bool:
    refusals = AuditRecord.objects.filter(action=REFUSED, actor=user, at__gte=since).count()
    return refusals >= settings.SECRET_GUARD_REFUSALS or (
        cache.get(_checks_key(user), 0) >= settings.SECRET_GUARD_CHECKS
    )


def _count_check(user) -> None:
    key = _checks_key(user)
    if cache.add(key, 1, timeout=int(_window().total_seconds())):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=int(_window().total_seconds()))


def secret_refusal(*, text: str, organisation: Organisation | None, user, what: str) -> str | None:
    """The refusal for a text `user` submitted (`what`: e.g. "the notes of task X"), or None.

    Rate-limited and audited as described above; the text itself is never recorded.
    """
    since = timezone.now() - _window()
    if _is_locked(user, since):
        if not AuditRecord.objects.filter(action=LOCKED, actor=user, at__gte=since).exists():
            record(
                action=LOCKED,
                actor=Actor.person(user=user),
                detail=f"refused {what} and every text for "
                f"{settings.SECRET_GUARD_WINDOW_MINUTES} minutes",
            )
        return REFUSAL
    _count_check(user)
    if contains_secret(text, organisation):
        record(
            action=REFUSED,
            actor=Actor.person(user=user),
            detail=f"refused {what}: it may contain a secret",
        )
        return REFUSAL
    return None
