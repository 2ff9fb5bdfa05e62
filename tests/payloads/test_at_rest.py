"""Payloads at rest: encrypted in the store, refused when altered, readable after key rotation,
old plain payloads still working and encrypted in place by a resumable command."""

from __future__ import annotations

import hashlib
import io
import os
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.lib import envelope, payloads
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status
from tests.messaging.helpers import payload_bytes, queue

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRET = b"NHS number 943 476 5919, Jane Example, 1 Example Street. " * 50


def stored_bytes(name: str) -> bytes:
    with payloads.store().open(name) as handle:
        return handle.read()


def flip_byte(name: str, from_end: int) -> None:
    path = payloads.root() / name
    data = bytearray(path.read_bytes())
    data[len(data) - from_end] ^= 0x01
    path.write_bytes(bytes(data))


def received(message: Message) -> Message:
    message.refresh_from_db()
    return Message.objects.get(direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id)


@pytest.mark.sandbox
def test_sent_and_received_payloads_on_disk_contain_none_of_their_plaintext(
    sandbox_mailboxes, client, admin_user
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, SECRET)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 1
    copy = received(message)

    for name in (message.payload.name, copy.payload.name):
        on_disk = (payloads.root() / name).read_bytes()
        assert on_disk.startswith(envelope.MAGIC)
        assert b"943 476" not in on_disk and b"Jane Example" not in on_disk
    assert payload_bytes(copy) == SECRET and copy.payload_sha256 == message.payload_sha256

    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[copy.pk]))
    assert b"".join(response.streaming_content) == SECRET
    assert int(response["Content-Length"]) == len(SECRET)


@pytest.mark.sandbox
def test_a_flipped_byte_is_refused_before_delivery(sandbox_mailboxes, client, admin_user):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, SECRET)
    flip_byte(message.payload.name, from_end=40)

    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert "failed its integrity check" in message.failure_reason
    assert message.attempts == 1  # no retry: an altered file never heals
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 0

    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[message.pk]), follow=True)
    assert "cannot be downloaded" in response.content.decode()
    assert AuditRecord.objects.filter(action="message.payload_unreadable").exists()
    assert not AuditRecord.objects.filter(action="message.payload_downloaded").exists()


@pytest.mark.sandbox
def test_a_flipped_byte_in_a_later_chunk_stops_the_send_before_mesh_has_it_whole(
    sandbox_mailboxes, settings
):
    settings.PAYLOAD_SEGMENT_BYTES = 64 * 1024
    sender, recipient = sandbox_mailboxes
    data = os.urandom(300 * 1024)
    message = queue(sender, data)
    Message.objects.filter(pk=message.pk).update(chunk_size=64 * 1024)  # 5 chunks, 5 segments
    flip_byte(message.payload.name, from_end=100)  # inside the last segment

    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert "failed its integrity check" in message.failure_reason
    assert message.chunks_done < 5
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 0


@pytest.mark.sandbox
def test_after_key_rotation_payloads_download_and_send_with_the_old_key_gone(
    sandbox_mailboxes, settings, client, admin_user
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, SECRET)
    segments_before = stored_bytes(message.payload.name)
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 payload keys re-wrapped" in out.getvalue()
    after = stored_bytes(message.payload.name)
    old_len = len(envelope.Header.read_from(io.BytesIO(segments_before)))
    new_len = len(envelope.Header.read_from(io.BytesIO(after)))
    assert after[new_len:] == segments_before[old_len:]  # never re-encrypted
    assert AuditRecord.objects.filter(action="payloads.keys_rewrapped").exists()

    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[message.pk]))
    assert b"".join(response.streaming_content) == SECRET
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 1
    assert payload_bytes(received(message)) == SECRET

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)  # again: nothing left to do
    assert "0 payload keys re-wrapped, 2 already current" in out.getvalue()


def plain_payload(name: str, data: bytes) -> None:
    """A payload as NeoMesh stored it before encryption: the bytes as they are."""
    with payloads.store().writer(name) as sink:
        sink.write(data)


class WorkerDied(BaseException):
    """Stands in for SIGKILL: nothing catches it, so no clean-up code runs."""


@pytest.mark.sandbox
def test_plain_payloads_keep_working_and_are_encrypted_in_place_resumably(
    sandbox_mailboxes, monkeypatch, settings
):
    settings.PAYLOAD_SEGMENT_BYTES = 4096
    sender, recipient = sandbox_mailboxes
    originals = {f"out/2025/01/{i:032x}": os.urandom(20_000) + SECRET for i in range(6)}
    for name, data in originals.items():
        plain_payload(name, data)
    legacy = queue(sender, b"placeholder")
    first = next(iter(originals))
    digest = hashlib.sha256(originals[first]).hexdigest()
    Message.objects.filter(pk=legacy.pk).update(
        payload=first, payload_sha256=digest, checksum=f"sha256:{digest}"
    )
    assert payload_bytes(Message.objects.get(pk=legacy.pk)) == originals[first]

    # The run dies half-way through writing the fourth payload.
    real_write = envelope.EncryptingWriter.write
    writers: list = []

    def dying_write(self, data):
        if self not in writers:
            writers.append(self)
        if len(writers) == 4 and self._index >= 2:  # two segments of payload 4 written
            raise WorkerDied()
        return real_write(self, data)

    monkeypatch.setattr(payloads, "COPY_BLOCK", 8192)
    monkeypatch.setattr(envelope.EncryptingWriter, "write", dying_write)
    with pytest.raises(WorkerDied):
        call_command("encrypt_payloads", stdout=StringIO())
    monkeypatch.setattr(envelope.EncryptingWriter, "write", real_write)

    states = [payloads.is_stored_encrypted(name) for name in originals]
    assert states == [True, True, True, False, False, False]
    for name, data in originals.items():  # every payload whole, plain or encrypted
        with payloads.open_payload(name) as handle:
            assert handle.read() == data

    out = StringIO()
    call_command("encrypt_payloads", stdout=out)
    assert "3 payloads encrypted, 4 already encrypted, 0 failed" in out.getvalue()
    for name, data in originals.items():
        raw = stored_bytes(name)
        assert raw.startswith(envelope.MAGIC) and SECRET[:20] not in raw
        with payloads.open_payload(name) as handle:
            assert handle.read() == data
    assert AuditRecord.objects.filter(action="payloads.encrypted").count() == 1

    assert outbox.message_send(message_id=legacy.pk) == Status.ACCEPTED
    inbox.mailbox_poll(mailbox=recipient)
    assert payload_bytes(received(legacy)) == originals[first]
