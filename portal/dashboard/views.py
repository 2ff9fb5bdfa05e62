from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone

from portal.accounts.decorators import permission_required
from portal.audit.models import Verification
from portal.lib.charts import volume_chart

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
        "now": now,
    }
    return render(request, "dashboard/home.html", context)
