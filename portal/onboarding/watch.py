"""The daily watch over go-live plans: overdue tasks and letters past their turnaround raise events.

One event per problem (portal.events `problem_raise`); the next check after the task is closed, or
the reply recorded, resolves it.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from portal.events.models import Event
from portal.events.services import problem_raise, problem_resolve

from .models import Correspondence, Task

TASK_KEY = "onboarding:task:{}:overdue"
LETTER_KEY = "onboarding:letter:{}:overdue"


@transaction.atomic
def onboarding_check_overdue(*, today: date | None = None) -> dict[str, int]:
    today = today or timezone.localdate()
    tasks = sum(_task_overdue(task) for task in Task.objects.overdue(today).select_related("plan"))
    waiting = Correspondence.objects.filter(status=Correspondence.Status.SENT).select_related(
        "plan"
    )
    letters = sum(
        _letter_overdue(letter, today) for letter in waiting if letter.is_past_turnaround(today)
    )
    resolved = _resolve_closed(today)
    return {"tasks": tasks, "letters": letters, "resolved": resolved}


def _task_overdue(task: Task) -> bool:
    return bool(
        problem_raise(
            problem_key=TASK_KEY.format(task.pk),
            kind="onboarding.task_overdue",
            severity="warning",
            summary=f"Go-live task {task.ref} \u201c{task.title}\u201d of {task.plan} was due on {task.due_date:%d %B %Y}.",
            mailbox_id=task.plan.target_mailbox_id,
            data={
                "plan": str(task.plan),
                "task": task.ref,
                "title": task.title,
                "due_date": task.due_date.isoformat(),
                "owner": str(task.owner or ""),
            },
        )
    )


def _letter_overdue(letter: Correspondence, today: date) -> bool:
    return bool(
        problem_raise(
            problem_key=LETTER_KEY.format(letter.pk),
            kind="onboarding.letter_overdue",
            severity="warning",
            summary=(
                f"No reply to \u201c{letter.subject}\u201d after {letter.working_days_waited(today)} "
                f"working days (turnaround {letter.turnaround_days})."
            ),
            mailbox_id=letter.plan.target_mailbox_id,
            data={
                "plan": str(letter.plan),
                "subject": letter.subject,
                "sent_at": letter.sent_at.isoformat() if letter.sent_at else "",
            },
        )
    )


def _resolve_closed(today: date) -> int:
    resolved = 0
    open_keys = Event.objects.open_problems().filter(problem_key__startswith="onboarding:")
    for key in open_keys.values_list("problem_key", flat=True):
        _, what, pk, _ = key.split(":")
        if what == "task":
            task = Task.objects.filter(pk=pk).first()
            if task is None or not task.is_overdue(today):
                resolved += bool(
                    problem_resolve(
                        problem_key=key,
                        kind="onboarding.task_done",
                        severity="info",
                        summary=f"Go-live task {task.ref if task else '#' + pk} is no longer overdue.",
                    )
                )
        else:
            letter = Correspondence.objects.filter(pk=pk).first()
            if letter is None or letter.status != Correspondence.Status.SENT:
                resolved += bool(
                    problem_resolve(
                        problem_key=key,
                        kind="onboarding.letter_answered",
                        severity="info",
                        summary=f"\u201c{letter.subject if letter else 'A letter'}\u201d was answered.",
                    )
                )
    return resolved
