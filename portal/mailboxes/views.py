"""Mailbox and organisation forms and workflows. The mailbox list and detail pages, which show
messages, health and the readiness gate too, compose several apps: portal.front."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.accounts import reach
from portal.accounts.factors import step_up_needed, step_up_redirect
from portal.accounts.models import Membership
from portal.audit.services import Actor, record
from portal.lib.http import permission_required

from .forms import MailboxForm, OrganisationForm, WorkflowForm
from .models import Mailbox, Organisation, Workflow


def _get_mailbox_for_user(request, pk: int, queryset=None) -> Mailbox:
    """A mailbox within the person's reach (portal.accounts.reach), else 404."""
    queryset = Mailbox.objects.select_related("organisation") if queryset is None else queryset
    return get_object_or_404(queryset.within_reach(request.user), pk=pk)


@permission_required("mailboxes.add_mailbox")
def mailbox_create(request):
    form = MailboxForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        mailbox = form.save()
        messages.success(request, f"Mailbox {mailbox.mailbox_id} added. Add its workflows next.")
        return redirect("mailboxes:detail", pk=mailbox.pk)
    no_organisations = not form.fields["organisation"].queryset.exists()
    context = {"form": form, "no_organisations": no_organisations}
    return render(request, "mailboxes/form.html", context)


@permission_required("mailboxes.change_mailbox")
def mailbox_edit(request, pk: int):
    mailbox = _get_mailbox_for_user(request, pk)
    form = MailboxForm(request.POST or None, instance=mailbox, user=request.user)
    if request.method == "POST" and form.is_valid():
        if form.changes_live_connection and step_up_needed(request):
            return step_up_redirect(request)
        mailbox = form.save()
        if form.disabling_live:
            record(
                actor=Actor.person(request),
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
    record(
        actor=Actor.person(request),
        action="mailbox.secrets_cleared",
        obj=mailbox,
        detail=f"changed: {changed}",
    )
    messages.warning(
        request,
        f"The stored password and shared key of {mailbox.mailbox_id} were cleared because "
        f"{changed} changed: set them again before it can connect.",
    )


@permission_required("mailboxes.add_workflow")
@require_POST
def workflow_add(request, pk: int):
    mailbox = _get_mailbox_for_user(request, pk)
    form = WorkflowForm(request.POST, mailbox=mailbox, user=request.user)
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
    organisations = Organisation.objects.within_reach(request.user)
    page = Paginator(organisations, 50).get_page(request.GET.get("page"))
    return render(request, "mailboxes/organisations.html", {"page": page})


@permission_required("mailboxes.add_organisation")
def organisation_create(request):
    form = OrganisationForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        organisation = form.save()
        # Whoever adds an organisation (without seeing every one) belongs to it.
        if not reach.sees_everything(request.user):
            Membership.objects.create(user=request.user, organisation=organisation)
        messages.success(request, f"Organisation {organisation} added.")
        return redirect("mailboxes:create")
    return render(request, "mailboxes/organisation_form.html", {"form": form})
