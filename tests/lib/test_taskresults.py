"""Task results: django-q2 never prunes them inside a task's save; the schedule keeps the newest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Task

from portal.lib import taskresults
from portal.lib.schedules import SCHEDULES

pytestmark = pytest.mark.django_db


def _task(n: int, *, success: bool) -> Task:
    stopped = timezone.now() - timedelta(minutes=100 - n)  # a higher n stopped later
    return Task.objects.create(
        id=f"{n:031x}{int(success)}",
        name=f"t{n}",
        func="portal.messaging.tasks.poll_mailbox",
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=success,
        result="ok" if success else "Traceback...",
    )


def test_it_keeps_the_newest_successes_and_every_failure(monkeypatch):
    for n in range(7):
        _task(n, success=True)
    failures = {_task(n, success=False).id for n in (0, 10)}
    monkeypatch.setattr(taskresults, "BATCH", 2)  # several rounds
    assert taskresults.prune(keep=3) == 4
    kept = set(Task.objects.filter(success=True).values_list("name", flat=True))
    assert kept == {"t4", "t5", "t6"}
    assert set(Task.objects.filter(success=False).values_list("id", flat=True)) == failures
    assert taskresults.prune(keep=3) == 0


def test_the_setting_decides_how_many_and_a_schedule_runs_it(settings):
    for n in range(3):
        _task(n, success=True)
    settings.TASK_RESULTS_KEPT = 1
    assert taskresults.prune() == 2
    assert list(Task.objects.values_list("name", flat=True)) == ["t2"]
    assert settings.Q_CLUSTER["save_limit"] == 0  # django-q2 itself never prunes (nor locks)
    assert ("Prune task results", "portal.lib.taskresults.prune", "I", 5) in SCHEDULES
