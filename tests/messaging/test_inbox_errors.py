"""Polls that go wrong: recorded as failed, never acknowledged without a verified, stored payload."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import mesh_client
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, InboundFailure, Message

from .helpers import payload_bytes, queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def inbox_ids(mailbox) -> list[str]:
    with mesh_client(mailbox) as client:
        return list(client.iter_inbox())


def send_direct(mailbox, data: bytes, checksum: str) -> str:
    """Another MESH client's send, with the checksum it chose."""
    with mesh_client(mailbox) as client:
        return client.send("X26ABC2", "TEST_WORKFLOW", data, checksum=checksum)


def test_a_poll_that_crashes_is_recorded_as_failed(sandbox_mailboxes, monkeypatch):
    sender, recipient = sandbox_mailboxes
    outbox.message_send(message_id=queue(sender, b"kept in MESH").pk)

    def disk_full(prefix):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inbox.payloads, "durable_writer", disk_full)
    result = inbox.mailbox_poll(mailbox=recipient)
    assert not result.ok
    assert "No space left on device" in result.errors[0]
    assert "No space left on device" in result.summary()
    recipient.refresh_from_db()
    assert recipient.last_poll_ok is False
    assert "Poll failed" in recipient.last_error and "No space left" in recipient.last_error
    assert recipient.poll_claimed_by == ""

    monkeypatch.undo()
    assert inbox.mailbox_poll(mailbox=recipient).acknowledged == 1  # it waited in MESH


@pytest.mark.parametrize("width", [1, 3])
def test_a_poll_stops_when_another_worker_takes_its_claim(
    sandbox_mailboxes, monkeypatch, settings, width
):
    sender, recipient = sandbox_mailboxes
    for n in range(16):
        outbox.message_send(message_id=queue(sender, f"message {n}".encode()).pk)
    settings.POLL_CONCURRENCY = width
    monkeypatch.setattr(inbox, "POLL_HEARTBEAT_SECONDS", 0.05)
    real_mark = inbox._mark_acknowledged

    def acknowledge_then_lose_the_claim(messages):
        real_mark(messages)
        # The claim went stale (say, the database refused our beats) and another worker took it.
        Mailbox.objects.filter(pk=recipient.pk).update(poll_claimed_by="other-host:2")
        time.sleep(0.5)

    monkeypatch.setattr(inbox, "_mark_acknowledged", acknowledge_then_lose_the_claim)
    result = inbox.mailbox_poll(mailbox=recipient)
    assert "lost its claim" in result.errors[0]
    left = inbox_ids(recipient)  # left for the poll that owns the mailbox now
    # Only the requests already handed out finish (what they downloaded is stored and
    # acknowledged): at most four times `width` and the one that finds the poll stopped were
    # listed; the rest were never touched.
    assert 1 <= result.acknowledged <= result.listed <= 4 * width + 1 < 16
    assert len(left) == 16 - result.acknowledged
    assert Message.objects.filter(direction=Direction.INBOUND).count() == result.acknowledged


def test_a_payload_that_fails_its_sha256_checksum_is_not_acknowledged(sandbox_mailboxes, settings):
    sender, recipient = sandbox_mailboxes
    bad_id = send_direct(sender, b"altered on the way", checksum="sha256:" + "ab" * 32)
    outbox.message_send(message_id=queue(sender, b"intact").pk)

    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded, result.acknowledged) == (2, 1, 1)
    assert len(result.errors) == 1 and result.errors[0].startswith(bad_id)
    assert "does not match its checksum" in result.errors[0]
    stored = Message.objects.get(direction=Direction.INBOUND)
    assert payload_bytes(stored) == b"intact"
    assert not Message.objects.filter(mesh_message_id=bad_id, direction=Direction.INBOUND).exists()
    root = Path(settings.STORAGES["payloads"]["OPTIONS"]["location"]) / "in"
    assert len([p for p in root.rglob("*") if p.is_file()]) == 1  # no copy of the bad one left
    recipient.refresh_from_db()
    assert recipient.last_poll_ok is False and "does not match its checksum" in recipient.last_error

    assert inbox_ids(recipient) == [bad_id]  # still in MESH, fetched again after a back-off
    failure = InboundFailure.objects.get(mesh_message_id=bad_id)
    assert failure.status == InboundFailure.State.BACKING_OFF
    assert "does not match" in failure.reason
    assert inbox.mailbox_poll(mailbox=recipient).held == 1  # not downloaded on every poll
    InboundFailure.objects.filter(pk=failure.pk).update(next_attempt_at=failure.first_failed_at)
    assert "does not match" in inbox.mailbox_poll(mailbox=recipient).errors[0]


def test_a_matching_sha256_checksum_and_other_checksum_forms_are_received(sandbox_mailboxes):
    import hashlib

    sender, recipient = sandbox_mailboxes
    data = b"checked"
    send_direct(sender, data, checksum="SHA256:" + hashlib.sha256(data).hexdigest().upper())
    send_direct(sender, b"md5 is not checked", checksum="md5:0123456789abcdef")
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.downloaded, result.acknowledged, result.errors) == (2, 2, [])
