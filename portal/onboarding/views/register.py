"""The IP allow-list register, and the live readiness gate with its overrides."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts import reach
from portal.accounts.factors import step_up_required
from portal.audit.services import Actor
from portal.lib.http import permission_required
from portal.mailboxes.models import Mailbox

from .. import gate as gates
from ..errors import OnboardingError
from ..forms import AllowListForm, OverrideForm, RevokeForm
from ..models import AllowListEntry, GateOverride, Plan
from ..services import allowlist_add
from ._access import get_plan, posted


def _render_allow_list(request, plan, form=None, status=200):
    context = {
        "plan": plan,
        "entries": plan.organisation.allow_list.select_related("added_by"),
        "form": form or AllowListForm(initial={"environment": plan.environment}, user=request.user),
    }
    return render(request, "onboarding/allow_list.html", context, status=status)


@permission_required("onboarding.view_allowlistentry")
def allow_list(request, pk: int):
    return _render_allow_list(request, get_plan(request, pk))


@permission_required("onboarding.add_allowlistentry")
@require_POST
def allow_list_add(request, pk: int):
    plan = get_plan(request, pk)
    form = AllowListForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            entry = allowlist_add(
                organisation=plan.organisation,
                environment=data["environment"],
                address=data["network"],
                purpose=data["purpose"],
                user=request.user,
            )
        except OnboardingError as exc:
            form.add_error("network", str(exc))
        else:
            messages.success(request, f"{entry.network} added to the register.")
            return redirect("onboarding:allow_list", pk=plan.pk)
    return _render_allow_list(request, plan, form, status=400)


@permission_required("onboarding.delete_allowlistentry")
@require_POST
def allow_list_remove(request, pk: int, entry_pk: int):
    plan = get_plan(request, pk)
    entry = get_object_or_404(AllowListEntry, pk=entry_pk, organisation=plan.organisation)
    entry.delete()
    messages.success(request, f"{entry.network} removed from the register.")
    return redirect("onboarding:allow_list", pk=plan.pk)


def _get_live_mailbox(request, mailbox_pk: int) -> Mailbox:
    mailboxes = Mailbox.objects.within_reach(request.user).select_related("organisation")
    return get_object_or_404(mailboxes, pk=mailbox_pk, environment="live")


@permission_required("onboarding.view_plan")
def gate_detail(request, mailbox_pk: int):
    mailbox = _get_live_mailbox(request, mailbox_pk)
    report = gates.gate_report(mailbox)
    context = {
        "mailbox": mailbox,
        "report": report,
        "overrides": mailbox.gate_overrides.select_related("created_by", "revoked_by"),
        "revoke_form": RevokeForm(user=request.user),
        "plan": report.plan
        or Plan.objects.within_reach(request.user)
        .filter(organisation=mailbox.organisation)
        .first(),
    }
    return render(request, "onboarding/gate.html", context)


@permission_required("onboarding.override_gate")
@step_up_required
def gate_override(request, mailbox_pk: int):
    """GET shows the reasons and asks for a written reason; POST records the override."""
    mailbox = _get_live_mailbox(request, mailbox_pk)
    form = OverrideForm(posted(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            gates.gate_override_create(
                mailbox=mailbox,
                reason=form.cleaned_data["reason"],
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.warning(
                request, f"Readiness gate overridden: {mailbox.mailbox_id} may now send and poll."
            )
            return redirect("onboarding:gate", mailbox_pk=mailbox.pk)
    context = {"mailbox": mailbox, "report": gates.gate_report(mailbox), "form": form}
    status = 400 if form.errors else 200
    return render(request, "onboarding/gate_override.html", context, status=status)


@permission_required("onboarding.override_gate")
@require_POST
def gate_revoke(request, override_pk: int):
    overrides = reach.within_reach(GateOverride.objects.select_related("mailbox"), request.user)
    override = get_object_or_404(overrides, pk=override_pk)
    form = RevokeForm(request.POST, user=request.user)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        gates.gate_override_revoke(override=override, reason=reason, actor=Actor.person(request))
    except OnboardingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Override revoked: the gate checks {override.mailbox.mailbox_id} again."
        )
    return redirect("onboarding:gate", mailbox_pk=override.mailbox_id)
