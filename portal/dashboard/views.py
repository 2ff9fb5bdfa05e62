from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone

from portal.audit.models import Verification
from portal.lib.charts import volume_chart
from portal.lib.http import permission_required
from portal.onboarding.models import Plan
from portal.onboarding.queries import plans_with_phase_progress

from .queries import daily_volume, dashboard_mailboxes


@permission_required("mailboxes.view_mailbox")
def home(request):
    """Every mailbox's health, attention first; 30 days of traffic; the last audit verification."""
    now = timezone.now()
    mailboxes = dashboard_mailboxes(now)
    today, counts = daily_volume(now)
    context = {
        "mailboxes": mailboxes,
        "attention_count": sum(1 for m in mailboxes if m.reasons),
        "chart": volume_chart(counts, end=today),
        "verification": Verification.objects.order_by("-at").first(),
        "plans": plans_with_phase_progress(Plan.objects.order_by("-created_at")[:5])
        if request.user.has_perm("onboarding.view_plan")
        else [],
        "now": now,
    }
    return render(request, "dashboard/home.html", context)
