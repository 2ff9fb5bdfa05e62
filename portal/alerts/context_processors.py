"""The top bar's alert count, and the alert channels that are failing (shown on every page)."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def alerts(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("mailboxes.view_mailbox"):
        return {}
    from portal.accounts import reach

    from .models import Alert
    from .services import channels_failing

    # Lazy: a page that does not render the top bar (a download, a redirect) runs no query.
    return {
        "alert_count": SimpleLazyObject(
            lambda: _count(Alert.objects.within_reach(user).for_inbox())
        ),
        # NeoMesh's own channels, not an organisation's: for those who see everything.
        "failing_alert_channels": SimpleLazyObject(
            lambda: (
                list(channels_failing().values("name", "last_error")[:5])
                if reach.sees_everything(user)
                else []
            )
        ),
    }


def _count(alerts) -> str:
    """At most 100 ids read, never a COUNT over every alert: "99+" beyond that."""
    found = len(alerts.values_list("pk", flat=True)[:100])
    return "99+" if found > 99 else str(found)
