from __future__ import annotations

import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_q.tasks import fetch

from portal.accounts.decorators import permission_required
from portal.audit.services import audit_person_action
from portal.dashboard.queries import describe_health, with_health
from portal.messaging.models import Message
from portal.messaging.quarantine import held_inbound
from portal.messaging.tasks import enqueue_poll

from .forms import MailboxFilterForm, MailboxForm, OrganisationForm, WorkflowForm
from .models import Mailbox, Organisation, Workflow
from .readiness import transfer_blocked_reason
from .services import mailbox_poll_request
from .tasks import enqueue_handshake

HANDSHAKE_TASK = "portal.mailboxes.tasks.handshake_mailbox"
POLL_TASK = "portal.messaging.tasks.poll_mailbox"
TASK_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _get_mailbox_for_user(request, pk: int, queryset=None) -> Mailbox:
    """Every role that may view mailboxes sees all of them; this is the one place to narrow that."""
    queryset = Mailbox.objects.select_related("organisation") if queryset is None else queryset
    return get_object_or_404(queryset, pk=pk)


@permission_required("mailboxes.view_mailbox")
def mailbox_list(request):
    filters = MailboxFilterForm(request.GET or None)
    mailboxes = filters.filter(with_health(Mailbox.objects.for_dashboard()))
    page = Paginator(mailboxes, 50).get_page(request.GET.get("page"))
    now = timezone.now()
    for mailbox in page:
        describe_health(mailbox, now)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filters": filters, "page": page, "querystring_base": query.urlencode()}
    return render(request, "mailboxes/list.html", context)


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
    recent = Message.objects.for_list().filter(mailbox=mailbox)
    context = {
        "mailbox": mailbox,
        "task": _task_outcome(request.GET.get("task"), mailbox),
        "workflows": mailbox.workflows.all(),
        "certificates": mailbox.certificates.all(),
        "recent_inbound": recent.inbound()[:5],
        "recent_outbound": recent.outbound()[:5],
        "workflow_form": WorkflowForm(mailbox=mailbox),
        "blocked_reason": transfer_blocked_reason(mailbox),
        "next_poll_allowed_at": None if mailbox.environment == "sandbox"
        else _future(mailbox.next_poll_allowed_at()),
        "inbound_failures": held_inbound(mailbox),
        "next_url": request.get_full_path(),
    }
    return render(request, "mailboxes/detail.html", context)


def _future(moment):
    return moment if moment and moment > timezone.now() else None


@permission_required("mailboxes.add_mailbox")
def mailbox_create(request):
    form = MailboxForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        mailbox = form.save()
        messages.success(request, f"Mailbox {mailbox.mailbox_id} added. Add its workflows next.")
        return redirect("mailboxes:detail", pk=mailbox.pk)
    no_organisations = not Organisation.objects.exists()
    context = {"form": form, "no_organisations": no_organisations}
    return render(request, "mailboxes/form.html", context)


@permission_required("mailboxes.change_mailbox")
def mailbox_edit(request, pk: int):
    mailbox = _get_mailbox_for_user(request, pk)
    form = MailboxForm(request.POST or None, instance=mailbox)
    if request.method == "POST" and form.is_valid():
        mailbox = form.save()
        if form.disabling_live:
            audit_person_action(
                request,
                action="mailbox.disabled",
                obj=mailbox,
                reason=form.cleaned_data["disable_reason"],
            )
            messages.warning(
                request, f"Live mailbox {mailbox.mailbox_id} is disabled: transfers stop."
            )
        else:
            messages.success(request, f"Mailbox {mailbox.mailbox_id} saved.")
        _report_cleared_secrets(request, mailbox)
        return redirect("mailboxes:detail", pk=mailbox.pk)
    return render(request, "mailboxes/form.html", {"form": form, "mailbox": mailbox})


def _report_cleared_secrets(request, mailbox: Mailbox) -> None:
    changes = getattr(mailbox, "secrets_cleared_because", [])
    if not changes:
        return
    changed = ", ".join(changes)
    audit_person_action(
        request, action="mailbox.secrets_cleared", obj=mailbox, detail=f"changed: {changed}"
    )
    messages.warning(
        request,
        f"The stored password and shared key of {mailbox.mailbox_id} were cleared because "
        f"{changed} changed: set them again before it can connect.",
    )


def _detail_with_task(mailbox: Mailbox, task_id: str):
    return redirect(f"{reverse('mailboxes:detail', args=[mailbox.pk])}?task={task_id}")


@permission_required("mailboxes.change_mailbox")
@require_POST
def mailbox_handshake(request, pk: int):
    """Test connection: the handshake runs in a worker; the page waits for its result."""
    mailbox = _get_mailbox_for_user(request, pk)
    task_id = enqueue_handshake(mailbox.pk)
    audit_person_action(
        request, action="mailbox.handshake_requested", obj=mailbox, detail=f"task {task_id}"
    )
    messages.info(request, f"Testing the connection of {mailbox.mailbox_id}.")
    return _detail_with_task(mailbox, task_id)


@permission_required("mailboxes.change_mailbox")
@require_POST
def mailbox_poll(request, pk: int):
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
    audit_person_action(
        request, action="mailbox.poll_requested", obj=mailbox, detail=f"task {task_id}"
    )
    messages.info(request, f"Polling {mailbox.mailbox_id}.")
    return _detail_with_task(mailbox, task_id)


@permission_required("mailboxes.add_workflow")
@require_POST
def workflow_add(request, pk: int):
    mailbox = _get_mailbox_for_user(request, pk)
    form = WorkflowForm(request.POST, mailbox=mailbox)
    if form.is_valid():
        form.save()
        messages.success(
            request,
            f"Workflow {form.cleaned_data['workflow_id']} registered on {mailbox.mailbox_id}.",
        )
        return redirect(f"{reverse('mailboxes:detail', args=[mailbox.pk])}#workflows")
    return render(
        request, "mailboxes/workflow_form.html", {"mailbox": mailbox, "form": form}, status=400
    )


@permission_required("mailboxes.delete_workflow")
@require_POST
def workflow_remove(request, pk: int, workflow_pk: int):
    mailbox = _get_mailbox_for_user(request, pk)
    workflow = get_object_or_404(Workflow, pk=workflow_pk, mailbox=mailbox)
    workflow.delete()
    messages.success(request, f"Workflow {workflow} removed from {mailbox.mailbox_id}.")
    return redirect(f"{reverse('mailboxes:detail', args=[mailbox.pk])}#workflows")


@permission_required("mailboxes.view_organisation")
def organisation_list(request):
    organisations = Organisation.objects.all()
    page = Paginator(organisations, 50).get_page(request.GET.get("page"))
    return render(request, "mailboxes/organisations.html", {"page": page})


@permission_required("mailboxes.add_organisation")
def organisation_create(request):
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organisation = form.save()
        messages.success(request, f"Organisation {organisation} added.")
        return redirect("mailboxes:create")
    return render(request, "mailboxes/organisation_form.html", {"form": form})
