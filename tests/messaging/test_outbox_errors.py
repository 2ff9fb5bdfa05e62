"""Sends that go wrong for reasons other than MESH: each attempt ends recorded, never stuck.

The faults here (a disk error, a key that no longer decrypts, a stolen claim) are ones the sandbox
cannot produce; MESH itself stays real.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from meshcore import MeshClient
from portal.lib import payloads
from portal.lib.stores import LocalStore
from portal.mailboxes.models import Mailbox
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status
from tests.factories import make_mailbox

from .helpers import payload_bytes, queue, send_until_worker_dies_at_chunk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def mailbox_error(mailbox: Mailbox) -> str:
    # Read without loading the secrets, which some tests make undecryptable.
    return Mailbox.objects.filter(pk=mailbox.pk).values_list("last_error", flat=True).get()


@pytest.fixture
def broken_disk(monkeypatch):
    def fail(self, name):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(LocalStore, "open", fail)
    return monkeypatch


def test_a_missing_payload_file_fails_at_once_with_a_clear_reason(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"deleted by mistake")
    payloads.delete_payload(message.payload.name)

    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert message.attempts == 1 and message.claimed_by == ""
    assert "missing from payload storage" in message.failure_reason
    assert "Queue the file again" in message.failure_reason
    assert message.events.filter(kind="failed").exists()
    assert "missing from payload storage" in mailbox_error(sender)


def test_a_disk_error_is_recorded_and_retried_with_backoff(sandbox_mailboxes, broken_disk):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"after the disk recovers")

    assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert (message.status, message.claimed_by) == (Status.QUEUED, "")
    assert "OSError" in message.last_error and "Input/output error" in message.last_error
    assert message.next_attempt_at > timezone.now()
    assert message.events.filter(kind="retry").exists()
    assert "Input/output error" in mailbox_error(sender)

    broken_disk.undo()
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 1


def test_it_gives_up_on_a_lasting_error_after_the_maximum_attempts(sandbox_mailboxes, broken_disk):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"never readable")
    Message.objects.filter(pk=message.pk).update(attempts=outbox.MAX_ATTEMPTS - 1)

    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert f"Gave up after {outbox.MAX_ATTEMPTS} attempts" in message.failure_reason
    assert "Input/output error" in message.failure_reason
    assert outbox.outbox_sweep()["enqueued"] == 0


def test_a_secret_that_no_longer_decrypts_is_recorded_not_left_sending(sandbox_mailboxes, settings):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"data")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was dropped

    assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert "SecretUnreadable" in message.last_error
    assert "cannot be decrypted" in mailbox_error(sender)


def test_an_error_is_logged_and_recorded_without_secrets(sandbox_mailboxes, monkeypatch, caplog):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"data")
    shared_key = sender.shared_key

    def leaky_failure(self, *args, **kwargs):
        raise RuntimeError(
            f"bad header Authorization: NHSMESH X26ABC1:abc:1:2024:ff ({shared_key})"
        )

    monkeypatch.setattr(MeshClient, "send", leaky_failure)
    with caplog.at_level(logging.ERROR, logger="portal.messaging.outbox"):
        assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    for text in (caplog.text, message.last_error, mailbox_error(sender)):
        assert "RuntimeError" in text
        assert shared_key not in text and "X26ABC1:abc" not in text


@pytest.mark.parametrize(
    ("progress", "status"),
    [
        ({"mesh_message_id": "MSG1", "chunks_done": 2, "chunks_total": 5}, Status.FAILED),
        ({}, Status.UNCERTAIN),  # chunk 1 may have reached MESH without our hearing of it
    ],
)
def test_the_sweep_gives_up_on_a_message_whose_workers_keep_dying(db, progress, status):
    mailbox = make_mailbox("X26ABC1")
    message = queue(mailbox, b"data")
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENDING,
        claimed_by="dead-host:1",
        attempts=outbox.MAX_ATTEMPTS,
        claimed_at=timezone.now() - outbox.CLAIM_LEASE * 2,
        last_error="OSError: disk gone",
        **progress,
    )

    assert outbox.outbox_sweep() == {"released": 0, "given_up": 1, "enqueued": 0}
    message.refresh_from_db()
    assert (message.status, message.claimed_by) == (status, "")
    assert f"Gave up after {outbox.MAX_ATTEMPTS} attempts" in message.failure_reason
    assert "OSError: disk gone" in message.failure_reason
    assert "Gave up" in mailbox_error(mailbox)


def test_a_send_whose_claim_was_taken_over_uploads_nothing(sandbox_mailboxes, monkeypatch):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"never twice")
    # An earlier attempt's outcome is unknown, so this one first asks MESH by local id.
    Message.objects.filter(pk=message.pk).update(attempts=1)
    monkeypatch.setattr(outbox, "HEARTBEAT_SECONDS", 0.05)
    real_track = MeshClient.track_by_local_id

    def slow_track(self, local_id):
        # Meanwhile the sweep hands the message to another worker, and our heartbeat notices.
        Message.objects.filter(pk=message.pk).update(claimed_by="other-host:2")
        time.sleep(0.5)
        return real_track(self, local_id)

    monkeypatch.setattr(MeshClient, "track_by_local_id", slow_track)
    assert outbox.message_send(message_id=message.pk) == "claim-lost"
    assert inbox.mailbox_poll(mailbox=recipient).listed == 0


def test_a_resume_cuts_the_same_chunks_after_the_chunk_size_setting_changes(
    sandbox_mailboxes, monkeypatch, settings
):
    sender, recipient = sandbox_mailboxes
    data = os.urandom(300 * 1024)
    settings.MESH_CHUNK_SIZE = 64 * 1024  # 5 chunks
    message = queue(sender, data)
    send_until_worker_dies_at_chunk(monkeypatch, message, 3)

    settings.MESH_CHUNK_SIZE = 100 * 1024  # changed before the resume: would be 3 chunks
    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert outbox.outbox_sweep()["released"] == 1
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    assert (message.chunk_size, message.chunks_total) == (64 * 1024, 5)

    inbox.mailbox_poll(mailbox=recipient)
    received = Message.objects.get(
        direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id
    )
    assert payload_bytes(received) == data


def test_send_failures_are_flagged_on_the_mailbox(sandbox_mailboxes):
    from portal.front.queries import describe_health

    sender, _ = sandbox_mailboxes
    assert outbox.message_send(message_id=queue(sender, b"x", to="NOSUCHBOX1").pk) == Status.FAILED
    assert "recipient mailbox is not registered" in mailbox_error(sender)

    Mailbox.objects.filter(pk=sender.pk).update(password="not-the-password")
    sender.refresh_from_db()
    assert outbox.message_send(message_id=queue(sender, b"y").pk) == Status.FAILED
    assert "refused the mailbox's credentials" in mailbox_error(sender)
    sender.refresh_from_db()
    assert "Recent error" in describe_health(sender, timezone.now()).reasons


def test_a_header_meshcore_refuses_fails_without_blaming_mesh(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"data")
    # Queued before the send form checked headers.
    Message.objects.filter(pk=message.pk).update(subject="Résumé")

    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert message.failure_reason.startswith("NeoMesh could not send it: mex-Subject must be ASCII")
    assert "MESH reported" not in message.failure_reason


def test_waiting_on_a_blocked_mailbox_uses_up_no_attempts(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"held back")
    Mailbox.objects.filter(pk=sender.pk).update(enabled=False)
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
        assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert message.attempts == 0 and "disabled" in message.last_error
    Mailbox.objects.filter(pk=sender.pk).update(enabled=True)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED


def test_a_worker_that_lost_its_claim_records_nothing_in_the_audit_trail(sandbox_mailboxes):
    from portal.audit.models import AuditRecord

    sender, _ = sandbox_mailboxes
    message = queue(sender, b"data")
    claimed = outbox.claim(message.pk, "slow-host:1")
    # The sweep gave the message to another worker meanwhile.
    Message.objects.filter(pk=message.pk).update(claimed_by="other-host:2")
    assert outbox._retry_later(claimed, "slow-host:1", "Temporary MESH problem") == Status.QUEUED
    assert outbox._fail(claimed, "slow-host:1", "rejected") == Status.FAILED
    records = AuditRecord.objects.for_object(message).values_list("action", flat=True)
    assert "message.retry" not in records and "message.failed" not in records
    assert Message.objects.get(pk=message.pk).claimed_by == "other-host:2"
