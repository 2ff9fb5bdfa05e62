"""Watched-directory intake: complete pairs only, SENT/FAILED with results, idempotent on local id
across two workers at once; one file end to end through a real mesh-sandbox."""

from __future__ import annotations

import json
import threading

import pytest

from portal.integrations.intake import intake_scan
from portal.integrations.models import Intake, IntakeFile
from portal.messaging import outbox
from portal.messaging.models import Message
from tests.factories import make_mailbox


def drop(out, name: str, data: bytes, **control) -> None:
    control.setdefault("to", "X26ABC2")
    control.setdefault("workflow_id", "TEST_WORKFLOW")
    (out / name).write_bytes(data)
    (out / f"{name}.json").write_text(json.dumps(control))  # the control file last


@pytest.fixture
def intake(tmp_path, db):
    return Intake.objects.create(mailbox=make_mailbox("X26ABC1"), path=str(tmp_path / "mesh"))


def out_dir(intake):
    intake_scan(intake=intake)  # makes OUT/, SENT/, FAILED/
    return intake.path and __import__("pathlib").Path(intake.path)


@pytest.mark.django_db
def test_it_queues_a_complete_pair_and_moves_it_to_sent_with_a_result(intake):
    root = out_dir(intake)
    drop(root / "OUT", "report.csv", b"a,b\n", local_id="batch-1", subject="Weekly")
    (root / "OUT" / "later.csv").write_bytes(b"no control file yet")
    assert intake_scan(intake=intake) == {"queued": 1, "failed": 0, "skipped": 0}
    message = Message.objects.get()
    assert (message.local_id, message.subject, message.filename) == (
        "batch-1",
        "Weekly",
        "report.csv",
    )
    assert sorted(p.name for p in (root / "SENT").iterdir()) == [
        "report.csv",
        "report.csv.json",
        "report.csv.result.json",
    ]
    result = json.loads((root / "SENT" / "report.csv.result.json").read_text())
    assert result["status"] == "queued" and result["neomesh_message"] == message.pk
    assert [p.name for p in (root / "OUT").iterdir()] == ["later.csv"]  # waits for its control file


@pytest.mark.django_db
def test_a_local_id_handed_in_twice_is_sent_once(intake):
    root = out_dir(intake)
    drop(root / "OUT", "one.csv", b"1", local_id="same")
    intake_scan(intake=intake)
    drop(root / "OUT", "one.csv", b"1", local_id="same")  # handed in again after a restart
    assert intake_scan(intake=intake)["queued"] == 0
    assert Message.objects.count() == 1
    assert len(list((root / "SENT").glob("one.csv*.result.json"))) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"to": "X26ABC2", "workflow_id": "TEST_WORKFLOW"}', '"local_id"'),
        ('["a list"]', "JSON object"),
        (
            '{"to": "X26ABC2", "workflow_id": "W", "local_id": "x", "evil": 1}',
            "unknown fields: evil",
        ),
    ],
)
def test_a_malformed_control_file_goes_to_failed_with_a_reason(intake, content, reason):
    root = out_dir(intake)
    (root / "OUT" / "bad.csv").write_bytes(b"x")
    (root / "OUT" / "bad.csv.json").write_text(content)
    assert intake_scan(intake=intake)["failed"] == 1
    assert reason in json.loads((root / "FAILED" / "bad.csv.result.json").read_text())["reason"]
    assert not Message.objects.exists()


CTL = """<DTSControl>
    <Version>1.0</Version>
    <AddressType>DTS</AddressType>
    <MessageType>Data</MessageType>
    <From_DTS>X26ABC1</From_DTS>
    <To_DTS>X26ABC2</To_DTS>
    <Subject>Weekly from the Java client</Subject>
    <LocalId>{local_id}</LocalId>
    <DTSId></DTSId>
    <PartnerId></PartnerId>
    <Compress>Y</Compress>
    <Encrypted>{encrypted}</Encrypted>
    <WorkflowId>TEST_WORKFLOW</WorkflowId>
    <ProcessId></ProcessId>
    <DataChecksum></DataChecksum>
    <IsCompressed>N</IsCompressed>
</DTSControl>"""


@pytest.mark.django_db
def test_it_reads_the_java_client_s_dat_and_ctl_pair(intake):
    root = out_dir(intake)
    (root / "OUT" / "weekly.dat").write_bytes(b"a,b\n")
    (root / "OUT" / "weekly.ctl").write_text(CTL.format(local_id="java-1", encrypted="Y"))
    assert intake_scan(intake=intake) == {"queued": 1, "failed": 0, "skipped": 0}
    message = Message.objects.get()
    assert (message.local_id, message.subject, message.recipient, message.workflow_id) == (
        "java-1",
        "Weekly from the Java client",
        "X26ABC2",
        "TEST_WORKFLOW",
    )
    assert (message.filename, message.encrypted, message.compressed) == ("weekly.dat", True, False)
    assert sorted(p.name for p in (root / "SENT").iterdir()) == [
        "weekly.ctl",
        "weekly.dat",
        "weekly.dat.result.json",
    ]
    (root / "OUT" / "weekly.dat").write_bytes(b"again")  # the same name again: never overwritten
    (root / "OUT" / "weekly.ctl").write_text(CTL.format(local_id="java-2", encrypted="N"))
    assert intake_scan(intake=intake)["queued"] == 1
    assert len(list((root / "SENT").glob("weekly.*.ctl"))) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("<DTSControl><To_DTS>X26ABC2", "not well-formed XML"),
        (
            '<!DOCTYPE d [<!ENTITY x "xx">]><DTSControl><LocalId>&x;</LocalId></DTSControl>',
            "DOCTYPE or entities",
        ),
        (CTL.format(local_id="", encrypted="N"), 'must name "local_id"'),
        (CTL.format(local_id="j", encrypted="maybe"), "<Encrypted> must be Y or N"),
        (CTL.replace("<From_DTS>X26ABC1", "<From_DTS>X26ZZZ9"), "sends from mailbox X26ABC1"),
        (CTL.replace("<Version>1.0</Version>", "<Evil>1</Evil>"), "unknown elements: Evil"),
    ],
)
def test_a_malformed_ctl_goes_to_failed_with_a_reason(intake, content, reason):
    root = out_dir(intake)
    (root / "OUT" / "bad.dat").write_bytes(b"x")
    (root / "OUT" / "bad.ctl").write_text(content)
    assert intake_scan(intake=intake)["failed"] == 1
    assert reason in json.loads((root / "FAILED" / "bad.dat.result.json").read_text())["reason"]
    assert (root / "FAILED" / "bad.ctl").exists()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_send_the_outbox_refuses_goes_to_failed_with_its_reason(intake):
    root = out_dir(intake)
    drop(root / "OUT", "x.csv", b"x", local_id="l1", workflow_id="NOT_REGISTERED")
    drop(root / "OUT", "empty.csv", b"", local_id="l2")
    assert intake_scan(intake=intake)["failed"] == 2
    reasons = [
        json.loads(p.read_text())["reason"] for p in sorted((root / "FAILED").glob("*.result.json"))
    ]
    assert "empty" in reasons[0] and "not registered" in reasons[1]
    assert not IntakeFile.objects.exists()  # a corrected file may reuse the local id


@pytest.mark.django_db(transaction=True)
def test_two_workers_pick_up_200_files_and_send_none_twice(tmp_path):
    intake = Intake.objects.create(mailbox=make_mailbox("X26ABC1"), path=str(tmp_path / "mesh"))
    root = out_dir(intake)
    for n in range(200):
        drop(root / "OUT", f"f{n:03d}.dat", f"file {n}".encode(), local_id=f"id-{n}")
    errors = []

    def worker():
        from django.db import connection

        try:
            intake_scan(intake=Intake.objects.get(pk=intake.pk))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    intake_scan(intake=intake)  # anything a claim held back
    assert Message.objects.count() == 200
    assert sorted(Message.objects.values_list("local_id", flat=True)) == sorted(
        f"id-{n}" for n in range(200)
    )
    assert len(list((root / "SENT").glob("*.result.json"))) == 200
    assert list((root / "OUT").iterdir()) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_the_result_gives_the_mesh_id_once_mesh_accepted_it(sandbox_mailboxes, tmp_path):
    sender, _ = sandbox_mailboxes
    intake = Intake.objects.create(mailbox=sender, path=str(tmp_path / "mesh"))
    root = out_dir(intake)
    drop(root / "OUT", "to-send.txt", b"through MESH", local_id="e2e-1")
    intake_scan(intake=intake)
    message = Message.objects.get()
    outbox.message_send(message_id=message.pk)
    intake_scan(intake=intake)
    message.refresh_from_db()
    result = json.loads((root / "SENT" / "to-send.txt.result.json").read_text())
    assert result["status"] == "sent" and result["mesh_message_id"] == message.mesh_message_id
