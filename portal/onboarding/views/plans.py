from __future__ import annotations

from django.contrib import messages
from django.db.models import F
from django.shortcuts import redirect, render
from django.utils import timezone

from portal.audit.services import Actor
from portal.lib.http import permission_required

from .. import queries, services
from ..errors import OnboardingError
from ..forms import PlanCreateForm, PlanMailboxesForm
from ..gate import gate_report
from ..models import CorrespondenceKind, Plan, Task, TaskStatus
from ..plans import TEMPLATES
from ._access import get_plan, posted


@permission_required("onboarding.view_plan")
def plan_list(request):
    today = timezone.localdate()
    plans = queries.annotate_attention(Plan.objects.within_reach(request.user), today)
    context = {
        "plans": queries.plans_with_phase_progress(plans),
        "templates": TEMPLATES.values(),
        # Only for those who work tasks: an auditor (read-only) owns none and has no "My tasks".
        "show_my_tasks": request.user.has_perm("onboarding.change_task")
        or Task.objects.filter(owner=request.user).exists(),
    }
    return render(request, "onboarding/list.html", context)


@permission_required("onboarding.add_plan")
def plan_create_view(request):
    form = PlanCreateForm(posted(request), initial={"owner": request.user.pk}, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = services.plan_create(
                template=data["template"],
                organisation=data["organisation"],
                environment=data["environment"],
                start_date=data["start_date"],
                owner=data["owner"],
                target_mailbox=data["target_mailbox"],
                integration_mailbox=data["integration_mailbox"],
                actor=Actor.person(request),
            )
        except OnboardingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"Plan started: {plan.tasks.count()} tasks, due dates suggested."
            )
            return redirect("onboarding:detail", pk=plan.pk)
    status = 400 if form.errors else 200
    return render(request, "onboarding/create.html", {"form": form}, status=status)


def _plan_context(request, plan: Plan) -> dict:
    today = timezone.localdate()
    phases = queries.plan_phases(plan)
    tasks = [task for phase in phases for task in phase.tasks]
    return {
        "plan": plan,
        "phases": phases,
        "overdue": [task for task in tasks if task.is_overdue(today)],
        "waiting": [task for task in tasks if task.status == TaskStatus.WAITING_NHS],
        "letters": queries.plan_correspondence(plan),
        "gates": [gate_report(mailbox) for mailbox in queries.live_mailboxes(plan)],
        "lapsed": queries.lapsed_evidence(plan, today),
        "allow_list": plan.organisation.allow_list.filter(environment=plan.environment),
        "today": today,
        "current_template": TEMPLATES.get(plan.template_key),
        "letter_kinds": CorrespondenceKind.choices,
    }


@permission_required("onboarding.view_plan")
def plan_detail(request, pk: int):
    plan = get_plan(request, pk)
    return render(request, "onboarding/detail.html", _plan_context(request, plan))


@permission_required("onboarding.view_plan")
def plan_report(request, pk: int):
    """A printable status report for management: no navigation, a page per section."""
    plan = get_plan(request, pk)
    context = _plan_context(request, plan)
    context["generated_at"] = timezone.now()
    return render(request, "onboarding/report.html", context)


@permission_required("onboarding.change_plan")
def plan_edit(request, pk: int):
    plan = get_plan(request, pk)
    form = PlanMailboxesForm(posted(request), instance=plan, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "The plan's mailboxes are saved.")
        return redirect("onboarding:detail", pk=plan.pk)
    status = 400 if form.errors else 200
    return render(request, "onboarding/edit.html", {"plan": plan, "form": form}, status=status)


@permission_required("onboarding.view_task")
def my_tasks(request):
    today = timezone.localdate()
    tasks = Task.objects.within_reach(request.user).for_owner(request.user).open()
    tasks = tasks.order_by(F("due_date").asc(nulls_last=True), "plan", "position")
    overdue = [task for task in tasks if task.is_overdue(today)]
    context = {"tasks": tasks, "overdue_count": len(overdue), "today": today}
    return render(request, "onboarding/my_tasks.html", context)
