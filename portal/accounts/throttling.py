"""Sign-in throttling: django-axes per username and address, plus limits per username and per address.

- A username at one address: locked after `AXES_FAILURE_LIMIT` failures (django-axes).
- A username everywhere: after `AXES_USERNAME_FAILURE_LIMIT` failures from any addresses, so that
  rotating addresses does not help. An address this username signed in from successfully before
  (axes' access log) is not locked by it: a guesser elsewhere cannot lock a person out of their
  own desk.
- An address, whatever usernames it tries: after `AXES_ADDRESS_FAILURE_LIMIT` failures, so that one
  address cannot try a few passwords on every account.

A lockout is recorded in the audit trail once per lock and cool-off window (`auth.lockout`), never
each failure: failed sign-ins are anyone's to make and would flood the sealed chain. Each failure is
kept in axes' failure log instead (the admin's "Access failures"). Admins unlock on the portal's
sign-in lockouts page or with `manage.py unlock_sign_in` (portal/accounts/services.py), audited.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address, get_client_username, get_failure_limit
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.db.models import Sum


def _recent(attempts, request):
    if settings.AXES_COOLOFF_TIME is None:
        return attempts
    return attempts.filter(attempt_time__gte=get_cool_off_threshold(request))


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def client_address(request) -> str | None:
    return getattr(request, "axes_ip_address", None) or get_client_ip_address(request)


def pair_failures(request, username: str | None) -> int:
    """Recent failures of this username from this client's address."""
    attempts = AccessAttempt.objects.filter(username=username, ip_address=client_address(request))
    return _failures(_recent(attempts, request))


def lock_scope(request, credentials=None) -> str | None:
    """Which wider lock holds this sign-in, in words for the audit trail; None when neither does."""
    address = client_address(request)
    if (
        address
        and _failures(_recent(AccessAttempt.objects.filter(ip_address=address), request))
        >= settings.AXES_ADDRESS_FAILURE_LIMIT
    ):
        return f"address {address}, across usernames"
    username = get_client_username(request, credentials)
    if not username:
        return None
    everywhere = _failures(_recent(AccessAttempt.objects.filter(username=username), request))
    if everywhere < settings.AXES_USERNAME_FAILURE_LIMIT:
        return None
    if address and AccessLog.objects.filter(username=username, ip_address=address).exists():
        return None  # where this person signed in before
    return f"username {username[:150]!r}, from every address"


class LoginThrottle(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        failures = super().get_failures(request, credentials)
        limit = get_failure_limit(request, credentials)
        if failures < limit and lock_scope(request, credentials):
            return limit
        return failures
