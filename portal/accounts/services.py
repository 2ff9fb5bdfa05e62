"""Sign-in lockouts: recorded once per window, listed and lifted by admins, every step audited."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone

from portal.audit.actors import Kind
from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.lib.http import client_ip

from .throttling import client_address, lock_scope, pair_failures

LOCKOUT = "auth.lockout"


def signin_lockout_record(*, request, username: str | None) -> AuditRecord | None:
    """`auth.lockout` for this lock, unless one was recorded within the cool-off window."""
    address = client_address(request)
    pair = f"username {str(username or '')[:150]!r} from {address}"
    # The lock that holds: this username at this address first (django-axes' own), else the wider.
    scope = (
        pair
        if pair_failures(request, username) >= settings.AXES_FAILURE_LIMIT
        else (lock_scope(request) or pair)
    )
    detail = f"Sign-in locked: {scope}"
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    if AuditRecord.objects.filter(action=LOCKOUT, detail=detail, at__gte=since).exists():
        return None
    who = Actor(kind=Kind.PERSON, label=str(username or "unknown")[:150], ip=client_ip(request))
    return record(action=LOCKOUT, actor=who, detail=detail)


def signin_lockouts():
    """Sign-in failures within the cool-off window, by username and address, most failures first."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return (
        AccessAttempt.objects.filter(attempt_time__gte=since)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .order_by("-failures", "username")
    )


@transaction.atomic
def signin_unlock(*, username: str = "", address: str = "", request=None) -> int:
    """Clear the sign-in failures of a username, an address, or both; returns how many records.

    Audited `auth.lockout_cleared` per record, as the person (`request`) or the command's operator.
    """
    if not username and not address:
        raise ValueError("Name a username, an address, or both.")
    attempts = AccessAttempt.objects.all()
    if username:
        attempts = attempts.filter(username=username)
    if address:
        attempts = attempts.filter(ip_address=address)
    cleared = list(attempts)
    for attempt in cleared:
        detail = (
            f"Sign-in failures of {attempt.username!r} from {attempt.ip_address} cleared "
            f"({attempt.failures_since_start} failures)"
        )
        if request is not None:
            record(
                actor=Actor.person(request),
                action="auth.lockout_cleared",
                obj=attempt,
                detail=detail,
            )
        else:
            record(actor=Actor.command(), action="auth.lockout_cleared", obj=attempt, detail=detail)
    attempts.delete()
    return len(cleared)
