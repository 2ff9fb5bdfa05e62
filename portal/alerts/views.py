from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts import reach

from . import services
from .models import Alert

SNOOZE_HOURS = {1, 8, 24, 168}
can_see_alerts = permission_required("mailboxes.view_mailbox", raise_exception=True)


@login_required
@can_see_alerts
def inbox_view(request):
    now = timezone.now()
    show_all = bool(request.GET.get("all"))
    alerts = Alert.objects.within_reach(request.user)
    alerts = alerts if show_all else alerts.for_inbox(now)
    context = {
        "alerts": alerts.select_related("acknowledged_by")[:200],
        "now": now,
        "show_all": show_all,
        # The channels are NeoMesh's own, not an organisation's: shown to those who see everything.
        "failing": services.channels_failing()
        if reach.sees_everything(request.user)
        else services.channels_failing().none(),
    }
    return render(request, "alerts/inbox.html", context)


@require_POST
@login_required
@can_see_alerts
def acknowledge_view(request, pk: int):
    alert = get_object_or_404(Alert.objects.within_reach(request.user), pk=pk)
    services.alert_acknowledge(alert=alert, request=request)
    messages.success(request, "Alert acknowledged.")
    return redirect("alerts:inbox")


@require_POST
@login_required
@can_see_alerts
def snooze_view(request, pk: int):
    alert = get_object_or_404(Alert.objects.within_reach(request.user), pk=pk)
    try:
        hours = int(request.POST.get("hours", ""))
    except ValueError:
        hours = 0
    if hours not in SNOOZE_HOURS:
        messages.error(request, "Choose how long to snooze the alert for.")
        return redirect("alerts:inbox")
    services.alert_snooze(alert=alert, hours=hours, request=request)
    messages.success(request, f"Alert snoozed for {hours} hour{'s' if hours != 1 else ''}.")
    return redirect("alerts:inbox")
