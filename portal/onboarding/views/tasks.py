from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.lib import payloads
from portal.lib.bodylimit import body_limit
from portal.lib.crosssite import same_site_only
from portal.lib.http import permission_required
from portal.onboarding.evidence import max_bytes

from .. import checks, selfcheck, services
from ..correspondence import correspondence_draft
from ..errors import OnboardingError
from ..evidence import content_type, evidence_add
from ..forms import CertificateLinkForm, DecisionForm, EvidenceForm, TaskForm
from ..models import EvidenceKind, TaskStatus
from ._access import get_decision, get_evidence, get_plan, get_task, posted, posted_files


def _render_task(request, plan, task, *, form=None, link_form=None, evidence_form=None, status=200):
    context = {
        "plan": plan,
        "task": task,
        "blockers": services.task_blockers(task) if not task.is_closed else [],
        "dependencies": task.depends_on.all(),
        "evidence": task.evidence.select_related("uploaded_by"),
        "letters": task.correspondence.all(),
        "history": AuditRecord.objects.for_object(task)[:50],
        "form": form or TaskForm(task=task, user=request.user),
        "link_form": link_form or CertificateLinkForm(plan=plan, user=request.user),
        "takes_certificate": task.system_check in checks.CSR_CHECKS,
        "evidence_form": evidence_form or EvidenceForm(task=task, user=request.user),
        "today": timezone.localdate(),
        # Rehearsing the witnessed test: the conformance self-test takes the task's id.
        "rehearses_witness_test": task.evidence_kind == EvidenceKind.WITNESS_TEST
        and not task.is_closed,
    }
    return render(request, "onboarding/task.html", context, status=status)


@permission_required("onboarding.view_task")
def task_detail(request, pk: int, task_pk: int):
    plan = get_plan(request, pk)
    return _render_task(request, plan, get_task(plan, task_pk))


@permission_required("onboarding.change_task")
@require_POST
def task_update_view(request, pk: int, task_pk: int):
    plan = get_plan(request, pk)
    task = get_task(plan, task_pk)
    form = TaskForm(request.POST, task=task, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.task_update(
                task=task,
                status=data["status"],
                owner=data["owner"],
                due_date=data["due_date"],
                notes=data["notes"],
                reason=data.get("reason", ""),
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error("status", str(exc))
        else:
            messages.success(request, f"{task.ref} saved: {task.get_status_display()}.")
            _completed_by_check(request, plan)
            return redirect("onboarding:task", pk=plan.pk, task_pk=task.pk)
    task.refresh_from_db()
    return _render_task(request, plan, task, form=form, status=400)


def _completed_by_check(request, plan) -> None:
    """A task just done may free checked tasks waiting on it: NeoMesh completes those it can."""
    for done in selfcheck.plan_complete_checked(plan=plan):
        messages.info(request, f"{done.ref} done too: NeoMesh checked it. {done.checked_evidence}.")


@permission_required("onboarding.change_task")
@require_POST
def task_reopen(request, pk: int, task_pk: int):
    """Reopen a task NeoMesh completed itself (the person disagrees with its evidence)."""
    plan = get_plan(request, pk)
    task = get_task(plan, task_pk)
    if task.completed_by_check:
        reason = request.POST.get("reason", "")[:2000]
        services.task_set_status(
            task=task, status=TaskStatus.TODO, reason=reason, actor=Actor.person(request)
        )
        messages.success(
            request, f"{task.ref} reopened: NeoMesh completes it again only on a new fact."
        )
    return redirect("onboarding:task", pk=plan.pk, task_pk=task.pk)


@permission_required("onboarding.change_task")
@require_POST
def task_certificate(request, pk: int, task_pk: int):
    plan = get_plan(request, pk)
    task = get_task(plan, task_pk)
    form = CertificateLinkForm(request.POST, plan=plan, user=request.user)
    if form.is_valid():
        try:
            services.task_link_certificate(
                task=task, certificate=form.cleaned_data["certificate"], user=request.user
            )
        except OnboardingError as exc:
            form.add_error("certificate", str(exc))
        else:
            messages.success(request, f"CSR linked: {task.certificate.common_name}.")
            return redirect("onboarding:task", pk=plan.pk, task_pk=task.pk)
    task.refresh_from_db()
    return _render_task(request, plan, task, link_form=form, status=400)


@body_limit(max_bytes)
@permission_required("onboarding.add_evidence")
@require_POST
def evidence_upload(request, pk: int, task_pk: int):
    plan = get_plan(request, pk)
    task = get_task(plan, task_pk)
    form = EvidenceForm(request.POST, request.FILES, task=task, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        evidence = evidence_add(
            plan=plan,
            task=task,
            checked=data["file"],
            kind=data["kind"],
            title=data["title"],
            review_date=data["review_date"],
            actor=Actor.person(request),
        )
        messages.success(request, f"Evidence kept: {evidence.original_filename}.")
        return redirect("onboarding:task", pk=plan.pk, task_pk=task.pk)
    return _render_task(request, plan, task, evidence_form=form, status=400)


@permission_required("onboarding.view_evidence")
@same_site_only
def evidence_download(request, pk: int, evidence_pk: int):
    plan = get_plan(request, pk)
    evidence = get_evidence(plan, evidence_pk)
    record(actor=Actor.person(request), action="onboarding.evidence_downloaded", obj=evidence)
    return FileResponse(
        payloads.open_payload(evidence.stored_name),
        as_attachment=True,
        filename=evidence.original_filename,
        content_type=content_type(evidence),
    )


@permission_required("onboarding.add_correspondence")
@require_POST
def task_draft_letter(request, pk: int, task_pk: int):
    """Write the task's email to NHS England from the plan's data, as a draft to check."""
    plan = get_plan(request, pk)
    task = get_task(plan, task_pk)
    if not task.correspondence_kind:
        messages.error(request, "This task has no email to NHS England.")
        return redirect("onboarding:task", pk=plan.pk, task_pk=task.pk)
    letter = correspondence_draft(
        plan=plan, kind=task.correspondence_kind, task=task, actor=Actor.person(request)
    )
    messages.success(request, "Draft written from the plan. Check it, then download it.")
    return redirect("onboarding:letter", pk=plan.pk, letter_pk=letter.pk)


def _decision_initial(decision) -> dict:
    """NHS England's reply, if it was recorded against the question's email."""
    if decision.is_recorded:
        return {
            "option": decision.chosen,
            "reply_text": decision.reply_text,
            "ticket_reference": decision.ticket_reference,
        }
    if decision.answers is None:
        return {}
    letter = decision.answers.correspondence.exclude(reply_text="").order_by("-replied_at").first()
    if letter is None:
        return {}
    return {"reply_text": letter.reply_text, "ticket_reference": letter.ticket_reference}


@body_limit(max_bytes)
@permission_required("onboarding.change_decision")
def decision_record_view(request, pk: int, decision_pk: int):
    plan = get_plan(request, pk)
    decision = get_decision(plan, decision_pk)
    form = DecisionForm(
        posted(request),
        posted_files(request),
        decision=decision,
        initial=_decision_initial(decision),
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.decision_record(
                decision=decision,
                option_key=data["option"],
                reply_text=data["reply_text"],
                ticket_reference=data["ticket_reference"],
                reply_file=data["reply_file"],
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error(None, str(exc))
        else:
            option = decision.chosen_option()
            messages.success(request, f"Decision recorded: {option['label']}.")
            return redirect("onboarding:detail", pk=plan.pk)
    context = {
        "plan": plan,
        "decision": decision,
        "form": form,
        "tasks": decision.tasks.order_by("position"),
    }
    return render(request, "onboarding/decision.html", context, status=400 if form.errors else 200)
