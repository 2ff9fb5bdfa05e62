"""Reads for the onboarding pages, each in a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Prefetch, Q

from portal.mailboxes.models import Environment

from .models import CLOSED_STATUSES, Correspondence, Decision, Evidence, Plan, Task, TaskStatus


@dataclass
class Phase:
    number: int
    title: str
    tasks: list[Task] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def closed(self) -> int:
        return sum(1 for task in self.tasks if task.is_closed)

    @property
    def done(self) -> int:
        return sum(1 for task in self.tasks if task.status == TaskStatus.DONE)

    @property
    def applicable(self) -> int:
        """Tasks still part of the plan: a skipped scenario's phase has none, never "100% done"."""
        return sum(1 for task in self.tasks if task.status != TaskStatus.NOT_APPLICABLE)

    @property
    def not_applicable(self) -> int:
        return self.total - self.applicable


@dataclass
class PhaseCount:
    number: int
    title: str
    total: int = 0
    closed: int = 0
    done: int = 0

    @property
    def applicable(self) -> int:
        return self.total - (self.closed - self.done)


def plans_with_phase_progress(plans) -> list[Plan]:
    """Plans for the list page, each with `.phase_counts`, `.overdue` and `.waiting`: two queries."""
    plans = list(plans.select_related("organisation", "target_mailbox"))
    rows = (
        Task.objects.filter(plan__in=plans)
        .values("plan_id", "phase")
        .annotate(
            total=Count("id"),
            closed=Count("id", filter=Q(status__in=CLOSED_STATUSES)),
            done=Count("id", filter=Q(status=TaskStatus.DONE)),
        )
    )
    counts = defaultdict(dict)
    for row in rows:
        counts[row["plan_id"]][row["phase"]] = row
    for plan in plans:
        plan.phase_counts = [
            PhaseCount(
                number,
                title,
                counts[plan.pk].get(number, {}).get("total", 0),
                counts[plan.pk].get(number, {}).get("closed", 0),
                counts[plan.pk].get(number, {}).get("done", 0),
            )
            for number, title in plan.phases
        ]
        plan.tasks_total = sum(p.total for p in plan.phase_counts)
        plan.tasks_closed = sum(p.closed for p in plan.phase_counts)
    return plans


def annotate_attention(plans, today: date):
    return plans.annotate(
        overdue=Count(
            "tasks", filter=~Q(tasks__status__in=CLOSED_STATUSES) & Q(tasks__due_date__lt=today)
        ),
        waiting=Count("tasks", filter=Q(tasks__status=TaskStatus.WAITING_NHS)),
    )


def plan_phases(plan: Plan) -> list[Phase]:
    """The plan's phases with their tasks (owner, dependencies, evidence) and decisions."""
    tasks = (
        plan.tasks.select_related("owner", "decision")
        .prefetch_related("depends_on", Prefetch("evidence", Evidence.objects.order_by("-pk")))
        .order_by("position")
    )
    phases = {int(n): Phase(int(n), title) for n, title in plan.phases}
    for task in tasks:
        phases.setdefault(task.phase, Phase(task.phase, f"Phase {task.phase}")).tasks.append(task)
    for decision in plan.decisions.select_related("recorded_by", "reply_evidence", "answers"):
        phases.setdefault(decision.phase, Phase(decision.phase, "")).decisions.append(decision)
    return [phases[number] for number in sorted(phases)]


def plan_correspondence(plan: Plan):
    return plan.correspondence.select_related("task", "sent_by").prefetch_related("attachments")


def live_mailboxes(plan: Plan):
    if plan.environment != Environment.LIVE:
        return []
    return list(plan.organisation.mailboxes.filter(environment=Environment.LIVE))


def lapsed_evidence(plan: Plan, today: date) -> list[Evidence]:
    # Withdrawn evidence is not renewed: its replacement is a new file (Scenario B's certificate).
    lapsed = plan.evidence.filter(review_date__lt=today, withdrawn_at__isnull=True)
    return list(lapsed.select_related("task"))


def waiting_correspondence(plan: Plan):
    return plan.correspondence.filter(status=Correspondence.Status.SENT)
