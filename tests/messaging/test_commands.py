"""The messaging commands operators and scripts run: output, and a non-zero exit on failure."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from portal.messaging import outbox
from portal.messaging.models import Direction, Message, Status
from tests.factories import make_mailbox
from tests.sandbox import free_port

from .helpers import queue

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def exit_code(*args: str) -> int:
    """The status `manage.py` exits with."""
    try:
        ManagementUtility(["manage.py", *args]).execute()
    except SystemExit as stopped:
        return stopped.code
    return 0


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(b"a,b\n1,2\n")
    return path


def send_args(path, *extra: str) -> list[str]:
    return [
        "mesh_send",
        "X26ABC1",
        str(path),
        "--to",
        "X26ABC2",
        "--workflow",
        "TEST_WORKFLOW",
        *extra,
    ]


# mesh_send


def test_mesh_send_refuses_a_missing_file(tmp_path):
    make_mailbox("X26ABC1")
    with pytest.raises(CommandError, match="No such file: .*nothing.csv"):
        run(*send_args(tmp_path / "nothing.csv"))
    assert not Message.objects.exists()


def test_mesh_send_refuses_an_unknown_mailbox(data_file):
    make_mailbox("X26ABC9")
    with pytest.raises(CommandError, match=r"No mailbox 'X26ABC1' in NeoMesh \(known: X26ABC9\)"):
        run(*send_args(data_file))
    assert exit_code(*send_args(data_file)) == 1


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_mesh_send_waits_for_a_worker_and_prints_the_mesh_message_id(
    sandbox_mailboxes, data_file, monkeypatch
):
    from django_q.tasks import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the worker runs the task as it is enqueued
    lines = run(*send_args(data_file, "--subject", "Results", "--wait")).splitlines()
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert message.status == Status.ACCEPTED and message.subject == "Results"
    assert lines == [
        f"Queued message #{message.pk} ({message.size_bytes} bytes) to X26ABC2",
        message.mesh_message_id,
    ]
    from portal.audit.models import AuditRecord

    queued = AuditRecord.objects.for_object(message).get(action="message.queued")
    assert queued.actor_label.startswith("command line (") and "@" in queued.actor_label


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_mesh_send_wait_exits_non_zero_when_mesh_refuses(sandbox_mailboxes, data_file, monkeypatch):
    from django_q.tasks import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    args = [
        "mesh_send",
        "X26ABC1",
        str(data_file),
        "--to",
        "NOSUCHBOX1",
        "--workflow",
        "TEST_WORKFLOW",
        "--wait",
    ]
    with pytest.raises(CommandError, match="Failed: MESH code 12"):
        run(*args)


# mesh_poll


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_mesh_poll_prints_what_it_downloaded_and_acknowledged(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    outbox.message_send(message_id=queue(sender, b"one").pk)
    assert run("mesh_poll", "X26ABC2").strip() == (
        "Polled X26ABC2: 1 in the inbox, 1 downloaded, 1 acknowledged"
    )
    assert exit_code("mesh_poll", "X26ABC2") == 0


def test_mesh_poll_exits_non_zero_when_a_poll_fails(settings, capsys):
    settings.MESH_BASE_URLS = {
        **settings.MESH_BASE_URLS,
        "sandbox": f"http://127.0.0.1:{free_port()}",
    }  # nothing listens there
    make_mailbox("X26ABC1")
    out = StringIO()
    with pytest.raises(CommandError, match="At least one poll did not complete"):
        call_command("mesh_poll", stdout=out)
    assert "Polled X26ABC1: 0 in the inbox" in out.getvalue() and "error(s)" in out.getvalue()
    assert exit_code("mesh_poll", "X26ABC1") == 1


def test_mesh_poll_needs_a_mailbox_to_poll():
    make_mailbox("X26ABC1", enabled=False)
    with pytest.raises(CommandError, match="No enabled mailboxes to poll"):
        run("mesh_poll")


# mesh_track


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_mesh_track_reports_and_records_where_the_message_is(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"tracked")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    run("mesh_poll", "X26ABC2")
    assert run("mesh_track", message.mesh_message_id.lower()).strip() == (
        f"{message.mesh_message_id}: MESH status acknowledged; NeoMesh status Acknowledged"
    )
    message.refresh_from_db()
    assert message.status == Status.ACKNOWLEDGED


def test_mesh_track_refuses_an_id_neomesh_never_sent():
    with pytest.raises(CommandError, match="NeoMesh sent no message with MESH id 'NOPE'"):
        run("mesh_track", "nope")


# setup_schedules


def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    from portal.lib.schedules import SCHEDULES

    first = run("setup_schedules")
    rows = list(Schedule.objects.order_by("name").values_list("name", "func", "schedule_type"))
    assert run("setup_schedules") == first == f"{len(SCHEDULES)} schedules in place.\n"
    assert (
        list(Schedule.objects.order_by("name").values_list("name", "func", "schedule_type")) == rows
    )
    assert len(rows) == len(SCHEDULES)
