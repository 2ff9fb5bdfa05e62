"""One bad inbound message is that message's failure only: against the real mesh-sandbox.

Run on SQLite by default and on PostgreSQL by `make test`'s tests.services phase, where the
over-long header used to fail every poll with DataError.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import DataError
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.events.models import Event
from portal.mailboxes.services import mesh_client
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, InboundFailure, Message, MessageEvent

from .helpers import gzip_bomb, payload_bytes, queue, raw_send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]
State = InboundFailure.State
MiB = 1024 * 1024


def inbox_ids(mailbox) -> list[str]:
    with mesh_client(mailbox) as client:
        return list(client.iter_inbox())


def payload_files(settings) -> list[Path]:
    root = Path(settings.STORAGES["payloads"]["OPTIONS"]["location"])
    return [path for path in root.rglob("*") if path.is_file()]


def test_it_receives_a_message_with_a_414_character_content_type_and_the_one_behind_it(
    sandbox, sandbox_mailboxes, settings
):
    sender, recipient = sandbox_mailboxes
    content_type = "text/plain; charset=utf-8; " + "x" * (414 - 27)
    assert len(content_type) == 414
    poison = raw_send(sandbox, b"poison", **{"Content-Type": content_type})
    outbox.message_send(message_id=queue(sender, b"behind it").pk)

    result = inbox.mailbox_poll(mailbox=recipient)

    assert (result.listed, result.downloaded, result.acknowledged, result.errors) == (2, 2, 2, [])
    stored = Message.objects.get(mesh_message_id=poison, direction=Direction.INBOUND)
    assert stored.content_type == content_type[:100]
    note = stored.events.get(kind=MessageEvent.Kind.NOTE).detail
    assert "mex-Content-Type was 414 characters long; only its first 100 are kept" in note
    behind = Message.objects.exclude(mesh_message_id=poison).get(direction=Direction.INBOUND)
    assert payload_bytes(behind) == b"behind it"
    assert inbox_ids(recipient) == []
    assert len(payload_files(settings)) == 3  # the sent copy and the two received: no orphan


def test_it_refuses_a_gzip_bomb_records_it_and_receives_the_rest(
    sandbox, sandbox_mailboxes, settings
):
    sender, recipient = sandbox_mailboxes
    bomb = gzip_bomb(64 * MiB)  # ~64 KiB sent, 64 MiB decoded: 1,000 times
    bomb_id = raw_send(sandbox, bomb, **{"Content-Encoding": "gzip"})
    outbox.message_send(message_id=queue(sender, b"after the bomb").pk)

    result = inbox.mailbox_poll(mailbox=recipient)

    assert (result.listed, result.downloaded, result.acknowledged) == (2, 1, 1)
    assert len(result.errors) == 1 and result.errors[0].startswith(bomb_id)
    assert "max_expansion_ratio" in result.errors[0] and "quarantined" in result.errors[0]
    failure = InboundFailure.objects.get(mesh_message_id=bomb_id)
    assert (failure.status, failure.failures, failure.mailbox) == (State.QUARANTINED, 1, recipient)
    assert not Message.objects.filter(mesh_message_id=bomb_id).exists()
    assert len(payload_files(settings)) == 2  # nothing of the bomb kept
    audit = AuditRecord.objects.get(action="message.quarantined")
    assert bomb_id in audit.detail and audit.object_id == str(recipient.pk)
    event = Event.objects.get(kind="message.quarantined")
    assert event.mailbox_id == recipient.pk and event.problem_key == f"inbound:{failure.pk}"

    # Held back: left in MESH, not downloaded again by the next polls.
    again = inbox.mailbox_poll(mailbox=recipient)
    assert (again.listed, again.held, again.downloaded, again.errors) == (1, 1, 0, [])
    assert inbox_ids(recipient) == [bomb_id]


def test_it_backs_off_a_message_the_database_refuses_then_quarantines_it(
    sandbox_mailboxes, settings, monkeypatch
):
    settings.MESH_INBOUND_QUARANTINE_AFTER = 2
    sender, recipient = sandbox_mailboxes
    outbox.message_send(message_id=queue(sender, b"refused").pk)
    outbox.message_send(message_id=queue(sender, b"fine").pk)
    bad_id = inbox_ids(recipient)[0]
    real_row = inbox._inbound_row

    def refuse_one(mailbox, info, payload):
        if info.message_id == bad_id:
            raise DataError("value too long for type character varying(100)")
        return real_row(mailbox, info, payload)

    monkeypatch.setattr(inbox, "_inbound_row", refuse_one)

    first = inbox.mailbox_poll(mailbox=recipient)
    assert (first.downloaded, first.acknowledged) == (1, 1)
    assert "DataError" in first.errors[0] and "will try again" in first.errors[0]
    failure = InboundFailure.objects.get(mesh_message_id=bad_id)
    assert failure.status == State.BACKING_OFF and failure.next_attempt_at is not None
    assert len(payload_files(settings)) == 3  # two sent, one received: the refused one removed
    assert AuditRecord.objects.filter(action="message.receive_failed").count() == 1

    second = inbox.mailbox_poll(mailbox=recipient)  # backing off: not downloaded
    assert (second.listed, second.held, second.errors) == (1, 1, [])

    InboundFailure.objects.filter(pk=failure.pk).update(next_attempt_at=failure.first_failed_at)
    third = inbox.mailbox_poll(mailbox=recipient)
    assert "quarantined for a person" in third.errors[0]
    failure.refresh_from_db()
    assert (failure.status, failure.failures) == (State.QUARANTINED, 2)
    assert len(payload_files(settings)) == 3
    assert inbox_ids(recipient) == [bad_id]  # never acknowledged


def test_a_person_retries_a_quarantined_message_or_leaves_it_in_mesh(
    client, admin_user, sandbox, sandbox_mailboxes, settings
):
    sender, recipient = sandbox_mailboxes
    bomb_id = raw_send(sandbox, gzip_bomb(32 * MiB), **{"Content-Encoding": "gzip"})
    inbox.mailbox_poll(mailbox=recipient)
    failure = InboundFailure.objects.get(mesh_message_id=bomb_id)
    client.force_login(admin_user)

    page = client.get(reverse("mailboxes:detail", args=[recipient.pk])).content.decode()
    assert "Inbound messages not received" in page and bomb_id in page
    assert bomb_id in client.get(reverse("messaging:list")).content.decode()

    url = reverse("messaging:inbound_failure", args=[failure.pk])
    settings.MESH_MAX_EXPANSION_RATIO = 5000.0  # the operator raised the limit
    response = client.post(url, {"action": "retry"})
    assert response.status_code == 302
    failure.refresh_from_db()
    assert failure.status == State.BACKING_OFF and failure.resolved_by == admin_user
    retry = AuditRecord.objects.get(action="message.quarantine_retry")
    assert retry.actor == admin_user and bomb_id in retry.detail
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.downloaded, result.acknowledged, result.errors) == (1, 1, [])
    failure.refresh_from_db()
    assert failure.status == State.RECEIVED
    assert Event.objects.filter(kind="message.quarantine_resolved").count() == 1

    settings.MESH_MAX_EXPANSION_RATIO = 200.0
    second_id = raw_send(sandbox, gzip_bomb(32 * MiB), **{"Content-Encoding": "gzip"})
    inbox.mailbox_poll(mailbox=recipient)
    second = InboundFailure.objects.get(mesh_message_id=second_id)
    client.post(reverse("messaging:inbound_failure", args=[second.pk]), {"action": "leave"})
    second.refresh_from_db()
    assert second.status == State.LEFT
    assert AuditRecord.objects.get(action="message.quarantine_left").actor == admin_user
    assert inbox.mailbox_poll(mailbox=recipient).held == 1  # left: never downloaded again


def test_only_mailbox_operators_can_retry_or_leave(client, auditor_user, sandbox_mailboxes):
    _, recipient = sandbox_mailboxes
    failure = InboundFailure.objects.create(
        mailbox=recipient, mesh_message_id="X", reason="r", status=State.QUARANTINED
    )
    client.force_login(auditor_user)
    response = client.post(
        reverse("messaging:inbound_failure", args=[failure.pk]), {"action": "leave"}
    )
    assert response.status_code == 403
    failure.refresh_from_db()
    assert failure.status == State.QUARANTINED


def test_it_leaves_the_inbox_in_mesh_when_disk_space_is_short(sandbox_mailboxes, settings):
    sender, recipient = sandbox_mailboxes
    outbox.message_send(message_id=queue(sender, b"waits").pk)
    settings.MESH_PAYLOAD_DISK_RESERVE_BYTES = 10**18  # more than any disk
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded) == (1, 0)
    assert "Not enough free disk space" in result.errors[0]
    assert not InboundFailure.objects.exists()  # not the message's fault
    assert len(inbox_ids(recipient)) == 1

    settings.MESH_PAYLOAD_DISK_RESERVE_BYTES = 0
    assert inbox.mailbox_poll(mailbox=recipient).acknowledged == 1


def test_a_message_larger_than_its_share_of_the_disk_is_downloaded_again_alone(
    sandbox_mailboxes, settings, monkeypatch
):
    """Four downloads at once each get a quarter of the room; one larger than its quarter but
    not than the room is received all the same (alone, once the others are done), and one
    larger than the room waits in MESH, backed off, not quarantined."""
    sender, recipient = sandbox_mailboxes
    settings.POLL_CONCURRENCY = 4
    monkeypatch.setattr(inbox, "disk_room", lambda: 3000)  # the free disk, made exact
    larger_than_share, larger_than_room = os.urandom(2000), os.urandom(4000)
    for data in (b"one", larger_than_share, b"two", larger_than_room, b"three"):
        outbox.message_send(message_id=queue(sender, data).pk)

    result = inbox.mailbox_poll(mailbox=recipient)

    assert (result.listed, result.downloaded, result.acknowledged) == (5, 4, 4)
    received = {payload_bytes(m) for m in Message.objects.filter(direction=Direction.INBOUND)}
    assert received == {b"one", larger_than_share, b"two", b"three"}
    (error,) = result.errors
    assert "not enough free disk space for it (it is more than 3,000 bytes" in error
    failure = InboundFailure.objects.get()
    assert (failure.status, failure.failures) == (State.BACKING_OFF, 1)
    assert len(inbox_ids(recipient)) == 1


def test_it_bounds_every_header_value_before_the_insert():
    fields, notes = inbox.bounded_headers(
        {"subject": "a\x00b", "filename": "f" * 301, "mesh_status_description": "d" * 5000}
    )
    assert fields == {
        "subject": "a?b",
        "filename": "f" * 300,
        "mesh_status_description": "d" * 4000,
    }
    assert len(notes) == 3 and "mex-Subject held control characters" in notes[0]


def test_mesh_client_hands_the_key_to_meshcore_in_memory_and_writes_no_file(
    sandbox_mailboxes, monkeypatch, tmp_path
):
    from portal.certificates.services import certificate_create_csr, certificate_install
    from tests.certificates.test_views import issue

    _, recipient = sandbox_mailboxes
    certificate = certificate_create_csr(mailbox=recipient)
    certificate_install(certificate=certificate, pem=issue(certificate))
    recipient.ca_bundle = issue(certificate_create_csr(mailbox=recipient))
    recipient.save(update_fields=["ca_bundle"])  # a CA change clears secrets; this test keeps them
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temporary))
    with mesh_client(recipient) as client:
        assert list(temporary.iterdir()) == []
        assert client.handshake().mailbox_id == "X26ABC2"  # the sandbox: plain http
        adapter = client._session.get_adapter("https://mesh.example")
        assert adapter._ssl_context.verify_mode.name == "CERT_REQUIRED"
    assert list(temporary.iterdir()) == []


def test_it_refuses_a_gzip_bomb_with_payloads_on_object_storage(
    sandbox, sandbox_mailboxes, s3_store, settings
):
    """No local disk to check (payloads stream to S3): the size limits still hold, and the
    refused message leaves nothing in the bucket."""
    from portal.lib import payloads

    sender, recipient = sandbox_mailboxes
    settings.MESH_PAYLOAD_DISK_RESERVE_BYTES = 10**18  # would stop a local-disk poll
    bomb_id = raw_send(sandbox, gzip_bomb(32 * MiB), **{"Content-Encoding": "gzip"})
    outbox.message_send(message_id=queue(sender, b"to the bucket").pk)
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.listed, result.downloaded, result.acknowledged) == (2, 1, 1)
    assert "max_expansion_ratio" in result.errors[0]
    assert InboundFailure.objects.get(mesh_message_id=bomb_id).status == State.QUARANTINED
    received = Message.objects.get(direction=Direction.INBOUND)
    assert payload_bytes(received) == b"to the bucket"
    assert sorted(payloads.store().names()) == sorted(m.payload.name for m in Message.objects.all())


def test_a_quarantined_message_puts_its_mailbox_on_the_dashboard_needing_attention(
    client, admin_user, sandbox_mailboxes
):
    _, recipient = sandbox_mailboxes
    InboundFailure.objects.create(
        mailbox=recipient, mesh_message_id="HELD1", reason="too large", status=State.QUARANTINED
    )
    InboundFailure.objects.create(
        mailbox=recipient, mesh_message_id="HELD2", reason="r", status=State.BACKING_OFF
    )
    client.force_login(admin_user)
    page = client.get(reverse("dashboard:home")).content.decode()
    assert "1 inbound message quarantined after failures" in page
    detail = client.get(reverse("mailboxes:detail", args=[recipient.pk])).content.decode()
    assert "1 inbound message quarantined after failures" in detail
