from __future__ import annotations

import pytest
from django.core.management import call_command

from portal.conformance.models import ConformanceRun, RunStatus

pytestmark = pytest.mark.django_db


def test_make_run_queues_one_real_conformance_run_of_the_sandbox_pair(
    task_queue, django_capture_on_commit_callbacks
):
    call_command("seed_demo")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo_conformance")
    assert task_queue.queue_size() == 1, "queued for the workers, once"
    run = ConformanceRun.objects.get()
    assert (run.mailbox.mailbox_id, run.peer.mailbox_id, run.status) == (
        "X26ABC1",
        "X26ABC2",
        RunStatus.QUEUED,
    )
    assert "high_volume" not in run.scenario_keys and len(run.scenario_keys) > 5
