"""Object access for the onboarding views: a plan within the person's reach (Plan.objects.
within_reach), else 404; its tasks, decisions, letters and evidence are found through it."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from ..models import Correspondence, Decision, Evidence, Plan, Task


def get_plan(request, pk: int) -> Plan:
    queryset = Plan.objects.within_reach(request.user).select_related(
        "organisation", "target_mailbox", "integration_mailbox"
    )
    return get_object_or_404(queryset, pk=pk)


def get_task(plan: Plan, task_pk: int) -> Task:
    task = get_object_or_404(
        Task.objects.select_related("owner", "decision", "completed_by"), pk=task_pk, plan=plan
    )
    task.plan = plan
    return task


def get_decision(plan: Plan, decision_pk: int) -> Decision:
    decision = get_object_or_404(
        Decision.objects.select_related("answers", "recorded_by", "reply_evidence"),
        pk=decision_pk,
        plan=plan,
    )
    decision.plan = plan
    return decision


def get_letter(plan: Plan, letter_pk: int) -> Correspondence:
    letter = get_object_or_404(
        Correspondence.objects.select_related("task", "sent_by", "created_by"),
        pk=letter_pk,
        plan=plan,
    )
    letter.plan = plan
    return letter


def get_evidence(plan: Plan, evidence_pk: int) -> Evidence:
    return get_object_or_404(Evidence.objects.select_related("task"), pk=evidence_pk, plan=plan)


def posted(request):
    """The POST data of a form submission, or None for a GET (an empty POST is still a submission)."""
    return request.POST if request.method == "POST" else None


def posted_files(request):
    return request.FILES if request.method == "POST" else None
