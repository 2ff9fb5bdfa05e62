"""Runs never stay stuck: the heartbeat, the sweep of stalled runs, lost claims stop a run."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.conformance import services, tasks
from portal.conformance.models import ConformanceRun, Origin, Outcome, RunStatus
from portal.conformance.services import run_create, run_execute
from portal.mailboxes.models import Mailbox
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db
LATER = timedelta(minutes=30)  # sweeping "30 minutes from now" finds a live heartbeat stale


@pytest.fixture
def pair():
    return make_mailbox("X26ABC1"), make_mailbox("X26ABC2")


def running(pair, *, quiet: timedelta, **kwargs) -> ConformanceRun:
    """A run a worker started and then went quiet: the first scenario done, the second under way."""
    run = run_create(mailbox=pair[0], peer=pair[1], enqueue=False, **kwargs)
    seen = timezone.now() - quiet
    ConformanceRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=seen, heartbeat_at=seen, worker="conformance run w1"
    )
    first, second = run.results.all()[:2]
    first.outcome, second.outcome = Outcome.PASSED, Outcome.RUNNING
    first.save(), second.save()
    return ConformanceRun.objects.get(pk=run.pk)


def queued(pair, *, quiet: timedelta, **kwargs) -> ConformanceRun:
    run = run_create(mailbox=pair[0], peer=pair[1], enqueue=False, **kwargs)
    ConformanceRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - quiet)
    return ConformanceRun.objects.get(pk=run.pk)


def test_the_sweep_ends_a_run_whose_worker_stopped(pair):
    stopped = running(pair, quiet=timedelta(minutes=5))
    alive = running(pair, quiet=timedelta(seconds=10))
    assert tasks.sweep_runs() == "1 abandoned, 0 requeued, 0 never started"
    stopped.refresh_from_db()
    assert stopped.status == RunStatus.ERROR and stopped.finished_at
    assert stopped.error.startswith("The worker stopped: no sign of life from it since ")
    assert stopped.summary == "1 passed, 14 not run"
    outcomes = list(stopped.results.values_list("outcome", "reason"))
    assert outcomes[0][0] == Outcome.PASSED
    assert set(outcomes[1:]) == {
        (Outcome.NOT_RUN, "Not run: the worker stopped before this scenario finished.")
    }
    entry = AuditRecord.objects.get(action="conformance.run_abandoned")
    assert (
        entry.object_id == str(stopped.pk) and "Could not run: 1 passed, 14 not run" in entry.detail
    )
    assert ConformanceRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING, "still beating"
    # Safe to run twice; the worker coming back late cannot overwrite the sweep's verdict.
    assert tasks.sweep_runs() == "0 abandoned, 0 requeued, 0 never started"
    stopped.error = ""
    services._finish(stopped)
    assert ConformanceRun.objects.get(pk=stopped.pk).status == RunStatus.ERROR
    actions = list(AuditRecord.objects.for_object(stopped).values_list("action", flat=True))
    assert sorted(actions) == ["conformance.run_abandoned", "conformance.run_started"]


def test_the_sweep_queues_a_run_nobody_started_again_once_then_gives_up(
    pair, django_capture_on_commit_callbacks, task_queue
):
    run = queued(pair, quiet=timedelta(minutes=11))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_runs() == "0 abandoned, 1 requeued, 0 never started"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.requeued == 1 and not run.is_stalled
    assert task_queue.queue_size() == 1
    assert AuditRecord.objects.filter(action="conformance.run_requeued").count() == 1

    ConformanceRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - LATER)
    assert tasks.sweep_runs() == "0 abandoned, 0 requeued, 1 never started"
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and run.error.startswith("No worker started the run")
    assert set(run.results.values_list("outcome", flat=True)) == {Outcome.NOT_RUN}
    assert AuditRecord.objects.filter(action="conformance.run_abandoned").count() == 1
    # A worker that finally picks up the lost task finds the run ended and leaves it alone.
    assert run_execute(run_id=run.pk).status == RunStatus.ERROR


def test_the_sweep_gives_up_at_once_on_a_command_run_that_never_started(pair):
    run = queued(pair, quiet=timedelta(minutes=11), origin=Origin.COMMAND)
    assert tasks.sweep_runs() == "0 abandoned, 0 requeued, 1 never started"
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and "the command that created it stopped" in run.error


def test_the_run_page_stops_refreshing_once_the_run_has_stalled(client, auditor_user, pair):
    client.force_login(auditor_user)
    fresh = queued(pair, quiet=timedelta(seconds=5))
    page = client.get(reverse("conformance:detail", args=[fresh.pk])).content.decode()
    assert 'data-refresh="2"' in page
    stopped = running(pair, quiet=timedelta(minutes=5))
    page = client.get(reverse("conformance:detail", args=[stopped.pk])).content.decode()
    assert "data-refresh" not in page and "The worker seems to have stopped." in page
    forgotten = queued(pair, quiet=timedelta(minutes=11))
    page = client.get(reverse("conformance:detail", args=[forgotten.pk])).content.decode()
    assert "data-refresh" not in page and "No worker has started this run" in page


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_the_run_alive_while_it_runs(sandbox_mailboxes, settings):
    settings.CONFORMANCE_STALE_SECONDS = 4  # a beat every second
    mailbox, peer = sandbox_mailboxes
    run = run_create(
        mailbox=mailbox, peer=peer, scenario_keys=["handshake", "missing_message"], enqueue=False
    )
    beats = []

    def slow(result):
        time.sleep(1.5)
        beats.append(ConformanceRun.objects.get(pk=run.pk).heartbeat_at)

    run = run_execute(run_id=run.pk, on_result=slow)
    assert run.status == RunStatus.PASSED
    assert beats[0] > run.started_at and beats[1] > beats[0]


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_run_the_sweep_ended_stops_and_keeps_the_sweeps_verdict(sandbox_mailboxes, settings):
    settings.CONFORMANCE_STALE_SECONDS = 4
    mailbox, peer = sandbox_mailboxes
    run = run_create(
        mailbox=mailbox,
        peer=peer,
        enqueue=False,
        scenario_keys=["handshake", "missing_message", "tracking"],
    )

    def swept(result):
        if result.key == "handshake":
            # The sweep of a worker that seemed dead (a long database stall, say).
            assert services.runs_sweep(now=timezone.now() + LATER)["abandoned"] == 1
            time.sleep(1.5)  # the next beat finds the run no longer running

    run = run_execute(run_id=run.pk, on_result=swept)
    assert run.status == RunStatus.ERROR and run.error.startswith("The worker stopped")
    outcomes = dict(run.results.values_list("key", "outcome"))
    assert outcomes == {
        "handshake": Outcome.PASSED,
        "missing_message": Outcome.NOT_RUN,
        "tracking": Outcome.NOT_RUN,
    }
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert "conformance.run_abandoned" in actions and "conformance.run_finished" not in actions
    assert not Mailbox.objects.filter(poll_claimed_at__isnull=False).exists(), "claims released"


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_lost_mailbox_claim_stops_the_run_between_scenarios(sandbox_mailboxes, settings):
    settings.POLL_CLAIM_LEASE_SECONDS = 4  # the claim is renewed every second
    mailbox, peer = sandbox_mailboxes
    run = run_create(
        mailbox=mailbox,
        peer=peer,
        enqueue=False,
        scenario_keys=["handshake", "missing_message", "tracking"],
    )

    def steal(result):
        if result.key == "handshake":
            Mailbox.objects.filter(pk=peer.pk).update(
                poll_claimed_by="poll w9", poll_claimed_at=timezone.now()
            )
            time.sleep(1.5)

    run = run_execute(run_id=run.pk, on_result=steal)
    assert run.status == RunStatus.ERROR
    assert run.error.startswith("The run stopped: it lost its hold on X26ABC2 (the poll claim")
    assert list(run.results.values_list("outcome", flat=True)) == [
        Outcome.PASSED,
        Outcome.NOT_RUN,
        Outcome.NOT_RUN,
    ]
    assert Mailbox.objects.get(pk=peer.pk).poll_claimed_by == "poll w9", "not taken back"
    assert Mailbox.objects.get(pk=mailbox.pk).poll_claimed_at is None, "its own claim released"
    finished = AuditRecord.objects.get(action="conformance.run_finished")
    assert "lost its hold on X26ABC2" in finished.detail


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_lost_mailbox_claim_stops_high_volume_part_way(sandbox_mailboxes, settings):
    import meshcore
    from tests.sandbox import PASSWORD, SHARED_KEY

    settings.POLL_CLAIM_LEASE_SECONDS = 4
    mailbox, peer = sandbox_mailboxes

    def steal():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            poll_claimed_by="poll w9", poll_claimed_at=timezone.now()
        )
        connection.close()

    thief = threading.Timer(1.0, steal)
    thief.start()
    try:
        run = run_create(mailbox=mailbox, peer=peer, scenario_keys=["high_volume"], enqueue=False)
        run = run_execute(run_id=run.pk)
    finally:
        thief.join()
    result = run.results.get()
    assert run.status == RunStatus.ERROR and "lost its hold on X26ABC1" in run.error
    assert result.outcome == Outcome.NOT_RUN and result.reason.startswith("Stopped part-way: ")
    assert 0 < len(result.message_ids) < 600, "stopped while sending"
    assert run.cleanup.startswith(f"Acknowledged {len(result.message_ids)} message(s)")
    with meshcore.MeshClient(
        mailbox.effective_base_url(), "X26ABC1", PASSWORD, SHARED_KEY
    ) as client:
        assert list(client.iter_inbox()) == [], "what it sent was acknowledged"


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_run_interrupted_by_an_exit_is_not_passed(sandbox_mailboxes):
    mailbox, peer = sandbox_mailboxes
    run = run_create(
        mailbox=mailbox, peer=peer, scenario_keys=["handshake", "missing_message"], enqueue=False
    )

    def leave(result):
        raise SystemExit(1)

    with pytest.raises(SystemExit):
        run_execute(run_id=run.pk, on_result=leave)
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and run.summary == "1 passed, 1 not run"
