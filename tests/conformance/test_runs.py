"""How a run lives: the onboarding-task attachment, the poller kept away, claims, run-once."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.conformance import services
from portal.conformance.models import ConformanceRun, Outcome, RunStatus
from portal.conformance.services import run_create, run_execute
from portal.mailboxes.models import Mailbox
from portal.messaging.inbox import mailbox_poll
from portal.onboarding.evidence import evidence_bytes
from portal.onboarding.models import EvidenceKind
from tests.onboarding.helpers import make_plan, task

from .conftest import execute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def test_a_run_started_from_an_onboarding_task_attaches_its_pack(sandbox_mailboxes, lead_user):
    plan = make_plan("mesh-api", live=False, integration=False)
    rehearse = task(plan, "rehearse")
    run = execute(
        *sandbox_mailboxes,
        "handshake",
        "unknown_recipient",
        task=rehearse,
        actor=Actor.person(user=lead_user),
    )
    assert run.status == RunStatus.PASSED
    evidence = rehearse.evidence.get()
    assert run.evidence == evidence
    assert evidence.kind == EvidenceKind.WITNESS_TEST and evidence.file_type == "zip"
    assert evidence.title == f"Conformance self-test run {run.pk}: Passed (2 passed)"
    assert evidence.original_filename.startswith(f"neomesh-conformance-{run.pk}-X26ABC1-")
    assert evidence.uploaded_by == lead_user
    archive = zipfile.ZipFile(io.BytesIO(evidence_bytes(evidence)))
    assert sorted(archive.namelist()) == ["report.html", "run.json"]
    document = json.loads(archive.read("run.json"))
    assert document["run"]["onboarding_task"] == {
        "plan": plan.title,
        "ref": "3.2",
        "title": "Rehearse the witnessed test cases",
    }
    assert AuditRecord.objects.filter(action="onboarding.evidence_uploaded").count() == 1
    # Finishing again (a second worker, say) never attaches a second copy.
    services._finish(run)
    assert rehearse.evidence.count() == 1


def test_a_run_without_a_task_attaches_nothing(sandbox_mailboxes):
    from portal.onboarding.models import Evidence

    execute(*sandbox_mailboxes, "handshake")
    assert not Evidence.objects.exists()


def test_the_poller_skips_both_mailboxes_while_a_run_uses_them(sandbox_mailboxes):
    mailbox, peer = sandbox_mailboxes
    seen = []

    def poll_during(result):
        seen.extend(mailbox_poll(mailbox=m).skipped for m in (mailbox, peer))

    run = run_create(mailbox=mailbox, peer=peer, scenario_keys=["send_receive"], enqueue=False)
    run = run_execute(run_id=run.pk, on_result=poll_during)
    assert run.status == RunStatus.PASSED
    assert seen == ["another poll of this mailbox is running"] * 2
    assert not Mailbox.objects.filter(poll_claimed_at__isnull=False).exists(), "released"
    assert mailbox_poll(mailbox=mailbox).ok


def test_a_busy_mailbox_ends_the_run_as_could_not_run(sandbox_mailboxes, settings):
    settings.CONFORMANCE_CLAIM_WAIT_SECONDS = 0
    mailbox, peer = sandbox_mailboxes
    Mailbox.objects.filter(pk=peer.pk).update(poll_claimed_at=timezone.now(), poll_claimed_by="w1")
    run = execute(mailbox, peer, "handshake", "tracking")
    assert run.status == RunStatus.ERROR
    assert run.error == "X26ABC2 is busy (a poll holds it); try again in a few minutes."
    assert set(run.results.values_list("outcome", flat=True)) == {Outcome.NOT_RUN}
    assert run.summary == "2 not run"
    mailbox.refresh_from_db()
    assert mailbox.poll_claimed_at is None, "the claim it did take was given back"
    assert Mailbox.objects.get(pk=peer.pk).poll_claimed_by == "w1", "the poll's claim is untouched"
    assert "Could not run" in AuditRecord.objects.get(action="conformance.run_finished").detail


def test_a_run_runs_once(sandbox_mailboxes):
    run = execute(*sandbox_mailboxes, "handshake")
    finished_at = run.finished_at
    again = run_execute(run_id=run.pk)
    assert again.finished_at == finished_at and again.results.get().outcome == Outcome.PASSED
    assert AuditRecord.objects.filter(action="conformance.run_finished").count() == 1


def test_a_run_refuses_a_mailbox_disabled_after_it_was_queued(sandbox_mailboxes):
    mailbox, peer = sandbox_mailboxes
    run = run_create(mailbox=mailbox, peer=peer, scenario_keys=["handshake"], enqueue=False)
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled=False)
    run = run_execute(run_id=run.pk)
    assert run.status == RunStatus.ERROR and run.error == "Mailbox X26ABC1 is disabled."
    assert ConformanceRun.objects.get().results.get().outcome == Outcome.NOT_RUN


def test_the_run_page_shows_progress_per_scenario_while_it_runs(
    sandbox_mailboxes, client, auditor_user
):
    from django.urls import reverse

    client.force_login(auditor_user)
    mailbox, peer = sandbox_mailboxes
    run = run_create(
        mailbox=mailbox, peer=peer, scenario_keys=["handshake", "tracking"], enqueue=False
    )
    pages = []

    def look(result):
        pages.append(client.get(reverse("conformance:detail", args=[run.pk])).content.decode())

    run_execute(run_id=run.pk, on_result=look)
    during, last = pages
    assert "Scenario 1 of 2" in during and 'data-refresh="2"' in during
    assert during.count(">Passed<") == 2 and ">Waiting<" in during, "run badge is Running"
    assert "Running" in during and "MESH accepted the handshake of X26ABC1" in during
    assert "Scenario 2 of 2" in last
    done = client.get(reverse("conformance:detail", args=[run.pk])).content.decode()
    assert "data-refresh" not in done and "2 passed." in done
