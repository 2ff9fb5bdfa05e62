"""The payload store on S3-compatible object storage: a real server process (moto's)."""

from __future__ import annotations

import hashlib
import io
import os
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse

from portal.lib import envelope, payloads
from portal.lib.stores import S3Store
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status
from tests.messaging.helpers import queue

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRET = b"NHS number 943 476 5919, Jane Example. " * 100


def raw_object(s3, name: str) -> tuple[bytes, dict]:
    got = s3.client().get_object(Bucket="payloads", Key=f"neomesh/{name}")
    return got["Body"].read(), got


def test_a_payload_in_the_bucket_contains_none_of_its_plaintext(s3_store):
    stored = payloads.store_stream(io.BytesIO(SECRET), "in")
    body, got = raw_object(s3_store, stored.name)
    assert body.startswith(envelope.MAGIC) and b"943 476" not in body
    assert got["ServerSideEncryption"] == "AES256"  # SSE settings passed through
    assert isinstance(payloads.store(), S3Store)
    with payloads.open_payload(stored.name) as handle:
        assert handle.read() == SECRET


def test_a_large_payload_streams_up_in_parts_and_reads_back_by_ranges(s3_store, settings):
    settings.PAYLOAD_SEGMENT_BYTES = 256 * 1024
    data = os.urandom(20 * 1024 * 1024 + 12345)  # three parts of the multipart upload
    stored = payloads.store_stream(io.BytesIO(data), "out")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    body, got = raw_object(s3_store, stored.name)
    assert got["ETag"].strip('"').endswith("-3")  # a multipart upload of 3 parts
    with payloads.open_payload(stored.name) as handle:
        handle.seek(15 * 1024 * 1024 + 7)
        assert handle.read(100_000) == data[15 * 1024 * 1024 + 7 :][:100_000]
        handle.seek(0)
        assert hashlib.sha256(handle.read()).hexdigest() == stored.sha256


def test_a_flipped_byte_in_the_bucket_is_refused(s3_store):
    stored = payloads.store_stream(io.BytesIO(SECRET), "in")
    body, _ = raw_object(s3_store, stored.name)
    changed = bytearray(body)
    changed[-30] ^= 1
    s3_store.client().put_object(
        Bucket="payloads", Key=f"neomesh/{stored.name}", Body=bytes(changed)
    )
    with pytest.raises(payloads.PayloadTampered):
        payloads.open_payload(stored.name).read()


def test_a_missing_object_is_file_not_found_and_a_failed_upload_leaves_nothing(s3_store):
    with pytest.raises(FileNotFoundError):
        payloads.open_payload("in/2026/01/" + "a" * 32)

    class Broken:
        def __init__(self):
            self.reads = 0

        def read(self, size):
            self.reads += 1
            if self.reads > 12:
                raise OSError("the upload's source broke")
            return b"x" * size

    with pytest.raises(OSError):
        payloads.store_stream(Broken(), "out")
    assert list(payloads.store().names()) == []
    uploads = s3_store.client().list_multipart_uploads(Bucket="payloads")
    assert not uploads.get("Uploads")


@pytest.mark.sandbox
def test_messages_send_receive_and_download_through_the_bucket(
    s3_store, sandbox_mailboxes, client, admin_user
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, SECRET)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 1
    message.refresh_from_db()
    copy = Message.objects.get(direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id)
    body, _ = raw_object(s3_store, copy.payload.name)
    assert b"Jane Example" not in body

    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[copy.pk]))
    assert b"".join(response.streaming_content) == SECRET


def test_encrypt_in_place_and_key_rotation_work_on_the_bucket(s3_store, settings):
    name = "out/2025/02/" + "b" * 32
    s3_store.client().put_object(Bucket="payloads", Key=f"neomesh/{name}", Body=SECRET)
    out = StringIO()
    call_command("encrypt_payloads", stdout=out)
    assert "1 payloads encrypted" in out.getvalue()
    assert b"Jane" not in raw_object(s3_store, name)[0]

    settings.FIELD_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.FIELD_ENCRYPTION_KEYS,
    ]
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 payload keys re-wrapped" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    with payloads.open_payload(name) as handle:
        assert handle.read() == SECRET


def test_the_store_url_is_checked():
    from django.core.exceptions import ImproperlyConfigured

    from portal.lib.stores import from_url

    with pytest.raises(ImproperlyConfigured, match="unknown option"):
        S3Store("s3://bucket/p?endpoint=x")
    with pytest.raises(ImproperlyConfigured, match="file:// or s3://"):
        from_url("ftp://x/y")
