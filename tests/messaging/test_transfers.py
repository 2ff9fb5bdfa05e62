"""Worker transfers against the real mesh-sandbox: send, receive, acknowledge, reports, faults."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status
from portal.messaging.services import message_refresh_tracking

from .helpers import WorkerDied, payload_bytes, queue, send_until_worker_dies_at_chunk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def test_it_sends_receives_and_acknowledges(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"a,b,c\n1,2,3\n", subject="Results", local_id="ref-1")
    assert message.status == Status.QUEUED

    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    assert message.mesh_message_id and message.chunks_done == message.chunks_total == 1

    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded, result.acknowledged, result.errors) == (1, 1, 1, [])
    received = Message.objects.get(
        direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id
    )
    assert payload_bytes(received) == b"a,b,c\n1,2,3\n"
    assert (received.sender, received.subject, received.local_id, received.workflow_id) == (
        "X26ABC1",
        "Results",
        "ref-1",
        "TEST_WORKFLOW",
    )
    assert received.status == Status.ACKNOWLEDGED
    assert [e.kind for e in received.events.all()] == ["downloaded", "acknowledged"]

    assert message_refresh_tracking(message=message) == "acknowledged"
    message.refresh_from_db()
    assert message.status == Status.ACKNOWLEDGED
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {
        "message.queued",
        "message.accepted",
        "message.downloaded",
        "message.acknowledged",
    } <= actions


def test_it_sends_in_chunks_and_resumes_after_the_worker_dies(sandbox_mailboxes, monkeypatch):
    sender, recipient = sandbox_mailboxes
    data = os.urandom(300 * 1024)
    message = queue(sender, data)
    Message.objects.filter(pk=message.pk).update(chunk_size=64 * 1024)  # 5 chunks

    # Chunk 3 has reached MESH, but the worker dies before recording it.
    send_until_worker_dies_at_chunk(monkeypatch, message, 3)

    message.refresh_from_db()
    assert (message.status, message.chunks_done, message.chunks_total) == (Status.SENDING, 2, 5)
    # Nobody else may take it while the claim is fresh...
    assert outbox.outbox_sweep()["released"] == 0
    assert outbox.message_send(message_id=message.pk) == "not-claimed"
    # ...but once the dead worker's lease has run out, the sweeper releases it.
    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert outbox.outbox_sweep()["released"] == 1

    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    chunk_events = list(message.events.filter(kind="chunk_sent").values_list("chunk", flat=True))
    assert chunk_events == [1, 2, 3, 4, 5]  # resumed at chunk 3: chunks 1 and 2 were not sent again

    inbox.mailbox_poll(mailbox=recipient)
    received = Message.objects.get(
        direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id
    )
    assert payload_bytes(received) == data
    assert received.chunks_total == 5


def test_it_completes_a_send_whose_worker_died_just_after_the_last_chunk(
    sandbox_mailboxes, monkeypatch
):
    sender, recipient = sandbox_mailboxes
    data = os.urandom(200 * 1024)
    message = queue(sender, data)
    Message.objects.filter(pk=message.pk).update(chunk_size=64 * 1024)  # 4 chunks
    send_until_worker_dies_at_chunk(monkeypatch, message, 4)  # MESH has finalised the message
    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert outbox.outbox_sweep()["released"] == 1

    # The resume re-sends chunk 4, MESH answers 423 (finalised), tracking says accepted: done.
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    assert message.chunks_done == 4 and not message.last_error
    inbox.mailbox_poll(mailbox=recipient)
    received = Message.objects.get(direction=Direction.INBOUND)
    assert received.mesh_message_id == message.mesh_message_id
    assert payload_bytes(received) == data


def test_it_does_not_duplicate_when_the_worker_dies_between_storing_and_acknowledging(
    sandbox_mailboxes, monkeypatch
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"only once")
    outbox.message_send(message_id=message.pk)

    from meshcore import MeshClient

    def die(self, message_id):
        raise WorkerDied()

    monkeypatch.setattr(MeshClient, "acknowledge", die)
    with pytest.raises(WorkerDied):
        inbox.mailbox_poll(mailbox=recipient)
    monkeypatch.undo()
    stored = Message.objects.get(direction=Direction.INBOUND)
    assert stored.status == Status.RECEIVED  # stored durably, not yet acknowledged

    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded, result.acknowledged) == (1, 0, 1)
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    stored.refresh_from_db()
    assert stored.status == Status.ACKNOWLEDGED
    assert inbox.mailbox_poll(mailbox=recipient).listed == 0


def test_it_records_an_acknowledgement_that_reached_mesh_just_before_the_worker_died(
    sandbox_mailboxes, monkeypatch
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"acknowledged, not recorded")
    outbox.message_send(message_id=message.pk)

    from meshcore import MeshClient

    acknowledge = MeshClient.acknowledge

    def acknowledge_then_die(self, message_id):
        acknowledge(self, message_id)  # MESH has it acknowledged...
        raise WorkerDied()  # ...and the worker stops before recording it

    monkeypatch.setattr(MeshClient, "acknowledge", acknowledge_then_die)
    with pytest.raises(WorkerDied):
        inbox.mailbox_poll(mailbox=recipient)
    monkeypatch.undo()
    stored = Message.objects.get(direction=Direction.INBOUND)
    assert stored.status == Status.RECEIVED

    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded, result.acknowledged) == (0, 0, 1)
    assert result.errors == []
    stored.refresh_from_db()
    assert stored.status == Status.ACKNOWLEDGED
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert AuditRecord.objects.filter(action="message.acknowledged").count() == 1


def test_it_polls_the_same_inbox_twice_without_duplicates(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    for n in range(3):
        outbox.message_send(message_id=queue(sender, f"message {n}".encode()).pk)
    first = inbox.mailbox_poll(mailbox=recipient)
    second = inbox.mailbox_poll(mailbox=recipient)
    assert (first.downloaded, second.listed) == (3, 0)
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 3


def test_it_links_a_non_delivery_report_to_the_failed_message(sandbox_mailboxes, sandbox):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"never collected", subject="Discharge")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    sandbox.report_not_collected(message)

    result = inbox.mailbox_poll(mailbox=sender)
    assert (result.downloaded, result.reports) == (1, 1)
    report = Message.objects.get(direction=Direction.INBOUND, message_type="REPORT")
    assert report.linked_message == message
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.mesh_status_code == "14"
    assert "did not collect the message within 5 days" in message.failure_reason
    assert message.events.filter(kind="report").exists()


def test_a_report_never_undoes_the_recipients_acknowledgement(sandbox_mailboxes, sandbox):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"collected")
    outbox.message_send(message_id=message.pk)
    Message.objects.filter(pk=message.pk).update(status=Status.ACKNOWLEDGED)
    message.refresh_from_db()
    sandbox.report_not_collected(message)

    assert inbox.mailbox_poll(mailbox=sender).reports == 1
    report = Message.objects.get(direction=Direction.INBOUND, message_type="REPORT")
    assert report.linked_message == message
    message.refresh_from_db()
    assert message.status == Status.ACKNOWLEDGED
    assert "Kept as acknowledged" in message.events.get(kind="report").detail
    assert not AuditRecord.objects.for_object(message).filter(action="message.failed").exists()


def test_it_fails_a_message_to_an_unknown_recipient_without_retrying(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"to nobody", to="NOSUCHBOX1")
    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert (message.mesh_status_code, message.attempts) == ("12", 1)
    assert "recipient mailbox is not registered" in message.failure_reason
    assert outbox.message_send(message_id=message.pk) == "not-claimed"


def test_it_retries_later_when_mesh_is_down(db, settings):
    from tests.factories import make_mailbox
    from tests.sandbox import free_port

    settings.MESH_BASE_URLS = {
        **settings.MESH_BASE_URLS,
        "sandbox": f"http://127.0.0.1:{free_port()}",
    }
    sender = make_mailbox("X26ABC1")
    message = queue(sender, b"later")
    assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.next_attempt_at > timezone.now()
    assert message.events.filter(kind="retry").exists()
    assert outbox.message_send(message_id=message.pk) == "not-claimed"  # not due yet

    result = inbox.mailbox_poll(mailbox=sender)
    assert result.errors and not result.ok
    sender.refresh_from_db()
    assert sender.last_poll_ok is False and "Poll failed" in sender.last_error


def test_it_never_polls_one_mailbox_twice_at_once(sandbox_mailboxes):
    _, recipient = sandbox_mailboxes
    assert inbox._claim_poll(recipient, "worker-a")
    assert inbox.mailbox_poll(mailbox=recipient, worker="worker-b").skipped == (
        "another poll of this mailbox is running"
    )
    # A claim whose worker stopped refreshing it expires.
    type(recipient).objects.filter(pk=recipient.pk).update(
        poll_claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert inbox.mailbox_poll(mailbox=recipient, worker="worker-b").ok


def test_it_never_lets_two_workers_send_one_message(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender)
    assert outbox.claim(message.pk, "worker-a") is not None
    assert outbox.claim(message.pk, "worker-b") is None
