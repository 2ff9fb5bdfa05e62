"""The top bar's alert count, and the alert channels that are failing (shown on every page)."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def alerts(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("mailboxes.view_mailbox"):
        return {}
    from .models import Alert
    from .services import channels_failing

    # Lazy: a page that does not render the top bar (a download, a redirect) runs no query.
    return {
        "alert_count": SimpleLazyObject(lambda: Alert.objects.for_inbox().count()),
        "failing_alert_channels": SimpleLazyObject(
            lambda: list(channels_failing().values("name", "last_error")[:5])
        ),
    }
