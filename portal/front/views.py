"""Pages that compose several apps: the dashboard, and the mailbox list and detail with their
messages, health, readiness gate and buttons (URLs in the mailboxes namespace: portal/urls.py)."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_q.tasks import fetch

from portal.audit.models import Verification
from portal.audit.services import Actor, record
from portal.lib.charts import volume_chart
from portal.lib.http import permission_required
from portal.mailboxes.enqueue import HANDSHAKE_TASK, enqueue_handshake
from portal.mailboxes.forms import MailboxFilterForm, WorkflowForm
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import mailbox_poll_request
from portal.mailboxes.views import _get_mailbox_for_user
from portal.messaging.enqueue import POLL_TASK, enqueue_poll
from portal.messaging.models import Message
from portal.messaging.quarantine import held_inbound
from portal.onboarding.gate import transfer_blocked_reason
from portal.onboarding.models import Plan
from portal.onboarding.queries import plans_with_phase_progress

from .queries import daily_volume, dashboard_mailboxes, describe_health, with_health

TASK_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _live(request) -> bool:
    """The request is the page's script fetching its live parts (see static/js/neomesh.js)."""
    return request.GET.get("live") == "1"


@permission_required("mailboxes.view_mailbox")
def home(request):
    """Every mailbox's health, attention first; 30 days of traffic; the last audit verification."""
    now, user = timezone.now(), request.user
    mailboxes = dashboard_mailboxes(now, user)
    context = {
        "mailboxes": mailboxes,
        "attention_count": sum(1 for m in mailboxes if m.reasons),
        "checking_count": sum(1 for m in mailboxes if m.checking),
        "live_every": settings.LIVE_REFRESH_SECONDS,
    }
    if _live(request):
        # The page's script asks for its live part alone: no chart, no plans, no audit.
        return render(request, "front/_home_live.html", context)
    today, counts = daily_volume(now, user)
    plans = Plan.objects.within_reach(user).order_by("-created_at")[:5]
    context |= {
        "chart": volume_chart(counts, end=today),
        "verification": Verification.objects.order_by("-at").first(),
        "plans": plans_with_phase_progress(plans)
        if request.user.has_perm("onboarding.view_plan")
        else [],
        "now": now,
    }
    return render(request, "front/home.html", context)


@permission_required("mailboxes.view_mailbox")
def mailbox_list(request):
    filters = MailboxFilterForm(request.GET or None, user=request.user)
    mailboxes = filters.filter(
        with_health(Mailbox.objects.within_reach(request.user).for_dashboard())
    )
    page = Paginator(mailboxes, 50).get_page(request.GET.get("page"))
    now = timezone.now()
    for mailbox in page:
        describe_health(mailbox, now)
    if _live(request):
        return render(request, "front/_mailbox_list_live.html", {"page": page})
    live = request.GET.copy()
    live["live"] = "1"
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "querystring_base": query.urlencode(),
        "live_url": f"{request.path}?{live.urlencode()}",
        "live_every": settings.LIVE_REFRESH_SECONDS,
    }
    return render(request, "front/mailbox_list.html", context)


def _task_outcome(task_id: str | None, mailbox: Mailbox) -> dict | None:
    """The state of a handshake or poll task started from this mailbox's page, for ?task=<id>."""
    if not task_id or not TASK_ID_RE.match(task_id):
        return None
    task = fetch(task_id)
    if task is None:
        return {"running": True}
    # Only this mailbox's own tasks: a task id from another page shows nothing.
    if task.func not in (HANDSHAKE_TASK, POLL_TASK) or not task.args or task.args[0] != mailbox.pk:
        return None
    if not task.success:
        last_line = str(task.result or "").strip().splitlines()[-1:] or ["unknown error"]
        return {
            "running": False,
            "kind": "failed",
            "text": f"The worker stopped with an error: {last_line[0]}",
        }
    text = str(task.result)
    # A poll that finished with errors is a problem too, not "Done" (PollResult.summary()).
    failed = any(word in text for word in (" failed", " skipped", " error(s): "))
    return {"running": False, "kind": "failed" if failed else "ok", "text": text}


@permission_required("mailboxes.view_mailbox")
def mailbox_detail(request, pk: int):
    queryset = with_health(Mailbox.objects.select_related("organisation"))
    mailbox = describe_health(_get_mailbox_for_user(request, pk, queryset), timezone.now())
    if _live(request):
        return render(request, "front/_mailbox_live.html", {"mailbox": mailbox})
    recent = Message.objects.for_list().filter(mailbox=mailbox)
    context = {
        "mailbox": mailbox,
        "live_every": settings.LIVE_REFRESH_SECONDS,
        "task": _task_outcome(request.GET.get("task"), mailbox),
        "workflows": mailbox.workflows.all(),
        "certificates": mailbox.certificates.all(),
        "recent_inbound": recent.inbound()[:5],
        "recent_outbound": recent.outbound()[:5],
        "workflow_form": WorkflowForm(mailbox=mailbox, user=request.user),
        "blocked_reason": transfer_blocked_reason(mailbox),
        "next_poll_allowed_at": None
        if mailbox.environment == "sandbox"
        else _future(mailbox.next_poll_allowed_at()),
        "inbound_failures": held_inbound(mailbox),
        "next_url": request.get_full_path(),
    }
    return render(request, "front/mailbox_detail.html", context)


def _future(moment):
    return moment if moment and moment > timezone.now() else None


def _detail_with_task(mailbox: Mailbox, task_id: str):
    return redirect(f"{reverse('mailboxes:detail', args=[mailbox.pk])}?task={task_id}")


@permission_required("mailboxes.change_mailbox")
@require_POST
def mailbox_handshake_view(request, pk: int):
    """Test connection: the handshake runs in a worker; the page waits for its result."""
    mailbox = _get_mailbox_for_user(request, pk)
    task_id = enqueue_handshake(mailbox.pk)
    record(
        actor=Actor.person(request),
        action="mailbox.handshake_requested",
        obj=mailbox,
        detail=f"task {task_id}",
    )
    messages.info(request, f"Testing the connection of {mailbox.mailbox_id}.")
    return _detail_with_task(mailbox, task_id)


@permission_required("mailboxes.change_mailbox")
@require_POST
def mailbox_poll_view(request, pk: int):
    """Poll now: one poll of this mailbox in a worker, at most once every 5 minutes (MESH's rule)."""
    mailbox = _get_mailbox_for_user(request, pk)
    next_allowed = mailbox_poll_request(mailbox=mailbox)
    if next_allowed is not None:
        wait = max(1, int((next_allowed - timezone.now()).total_seconds()))
        messages.error(
            request,
            f"MESH allows a poll at most once every 5 minutes: the next poll of "
            f"{mailbox.mailbox_id} is allowed at {timezone.localtime(next_allowed):%H:%M:%S} "
            f"(in {wait // 60} min {wait % 60} s).",
        )
        return redirect("mailboxes:detail", pk=mailbox.pk)
    task_id = enqueue_poll(mailbox.pk)
    record(
        actor=Actor.person(request),
        action="mailbox.poll_requested",
        obj=mailbox,
        detail=f"task {task_id}",
    )
    messages.info(request, f"Polling {mailbox.mailbox_id}.")
    return _detail_with_task(mailbox, task_id)
