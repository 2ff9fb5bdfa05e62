"""manage.py mesh_conformance: a line per scenario, and a non-zero exit when anything fails."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.audit.models import AuditRecord
from portal.conformance.models import ConformanceRun, Origin, RunStatus
from portal.mailboxes.models import Mailbox
from portal.onboarding.models import Task, TaskStatus
from tests.onboarding.helpers import make_plan, task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def conformance(*args: str) -> str:
    out = io.StringIO()
    call_command("mesh_conformance", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_lists_the_scenarios(db):
    listed = conformance("--list")
    assert "handshake" in listed and "702" in listed and "endpoint_lookup" in listed


def test_it_runs_chosen_scenarios_prints_a_line_each_and_writes_the_pack(
    sandbox_mailboxes, tmp_path
):
    pack = tmp_path / "pack.zip"
    out = conformance(
        "x26abc1",
        "--peer",
        "X26ABC2",
        "--scenario",
        "handshake",
        "--scenario",
        "send_chunked",
        "--evidence",
        str(pack),
    )
    lines = out.splitlines()
    assert lines[0].startswith("Run ") and "X26ABC1 with X26ABC2 (Sandbox" in lines[0]
    assert lines[1].startswith("PASS  100      handshake")
    assert lines[2].startswith("PASS  502      send_chunked")
    assert "passed: 2 passed" in out
    assert sorted(zipfile.ZipFile(pack).namelist()) == ["report.html", "run.json"]
    run = ConformanceRun.objects.get()
    assert run.origin == Origin.COMMAND and run.status == RunStatus.PASSED
    started = AuditRecord.objects.get(action="conformance.run_started")
    assert started.actor_label.startswith("command line (")
    assert run.started_by_label == started.actor_label


def test_it_exits_non_zero_when_a_scenario_fails(sandbox_mailboxes):
    with pytest.raises(CommandError, match="Failed. 0 passed|Failed. 1 failed"):
        conformance(
            "X26ABC1",
            "--peer",
            "X26ABC2",
            "--scenario",
            "endpoint_lookup",
            "--workflow",
            "TEST_WORKFLOW_ACK",
        )


def test_it_exits_non_zero_when_the_peer_cannot_be_reached(sandbox_mailboxes, capsys):
    Mailbox.objects.filter(mailbox_id="X26ABC2").update(base_url="http://127.0.0.1:9")
    out = io.StringIO()
    with pytest.raises(CommandError, match="Failed"):
        call_command(
            "mesh_conformance",
            "X26ABC1",
            "--peer",
            "X26ABC2",
            "--scenario",
            "send_receive",
            stdout=out,
        )
    assert "FAIL  201/202  send_receive" in out.getvalue()
    run = ConformanceRun.objects.get()
    assert (
        run.cleanup.startswith("Acknowledged 0 message(s)")
        and "Could not acknowledge 1" in run.cleanup
    )
    result = run.results.get()
    assert result.exchanges and result.exchanges[-1]["status"] is None, "no answer is recorded too"


def test_it_refuses_unknown_mailboxes_scenarios_and_live_mailboxes(sandbox_mailboxes):
    with pytest.raises(CommandError, match="No mailbox 'X26NOPE'"):
        conformance("X26NOPE", "--peer", "X26ABC2")
    with pytest.raises(CommandError, match="Unknown scenario"):
        conformance("X26ABC1", "--peer", "X26ABC2", "--scenario", "teleport")
    Mailbox.objects.update(environment="live")
    with pytest.raises(CommandError, match="is a LIVE mailbox"):
        conformance("X26ABC1", "--peer", "X26ABC2", "--scenario", "handshake")
    assert not ConformanceRun.objects.exists()


def test_it_attaches_only_to_an_open_witness_test_rehearsal_task_as_the_form_does(
    sandbox_mailboxes,
):
    plan = make_plan("mesh-api", live=False, integration=False)
    rehearse = task(plan, "rehearse")
    other = plan.tasks.exclude(evidence_kind="witness_test").first()
    run = ("X26ABC1", "--peer", "X26ABC2", "--scenario", "handshake", "--task")
    with pytest.raises(CommandError, match=rf"task {other.ref} .* does not take witnessed test"):
        conformance(*run, str(other.pk))
    Task.objects.filter(pk=rehearse.pk).update(status=TaskStatus.DONE)
    with pytest.raises(CommandError, match=r"task 3.2 .* is done: a closed task takes no evidence"):
        conformance(*run, str(rehearse.pk))
    assert not ConformanceRun.objects.exists()
    Task.objects.filter(pk=rehearse.pk).update(status=TaskStatus.IN_PROGRESS)
    assert "Evidence pack attached to onboarding task 3.2." in conformance(*run, str(rehearse.pk))


def test_it_exits_with_status_1_for_a_refused_task(sandbox_mailboxes, capsys):
    from django.core.management import execute_from_command_line

    plan = make_plan("mesh-api", live=False, integration=False)
    other = plan.tasks.exclude(evidence_kind="witness_test").first()
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(
            [
                "manage.py",
                "mesh_conformance",
                "X26ABC1",
                "--peer",
                "X26ABC2",
                "--task",
                str(other.pk),
            ]
        )
    assert exited.value.code == 1
    assert "does not take witnessed test records" in capsys.readouterr().err
