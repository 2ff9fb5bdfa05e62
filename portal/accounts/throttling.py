"""Sign-in throttling: django-axes per username and address, plus a higher limit per username."""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


class LoginThrottle(AxesDatabaseHandler):
    """Locks a username at one address after AXES_FAILURE_LIMIT failures, as django-axes does, and
    the username everywhere after AXES_USERNAME_FAILURE_LIMIT failures from any addresses.

    Per address alone, an attacker who rotates addresses gets a fresh allowance from each. The
    higher limit keeps a person who mistypes from locking themselves out everywhere.
    """

    def get_failures(self, request, credentials=None) -> int:
        failures = super().get_failures(request, credentials)
        username = get_client_username(request, credentials)
        if not username:
            return failures
        attempts = AccessAttempt.objects.filter(username=username)
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        everywhere = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        if everywhere >= settings.AXES_USERNAME_FAILURE_LIMIT:
            return max(failures, get_failure_limit(request, credentials))
        return failures
