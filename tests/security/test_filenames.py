"""MESH filenames are never filesystem paths: payloads live under generated names in the payload
root, and a download's filename is sanitised.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.lib import payloads
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message
from tests.messaging.helpers import payload_bytes, queue

HOSTILE = "../../etc/passwd"


def assert_stored_safely(message: Message) -> None:
    root = payloads.root().resolve()
    stored = (root / message.payload.name).resolve()
    assert stored.is_relative_to(root) and stored.is_file()
    assert ".." not in message.payload.name and "passwd" not in message.payload.name
    assert list(root.parent.rglob("passwd")) == []  # nothing written where the name pointed


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_hostile_mesh_filename_is_stored_under_a_generated_name(
    client, admin_user, sandbox_mailboxes
):
    sender, recipient = sandbox_mailboxes
    sent = queue(sender, b"root:x:0:0\n", filename=HOSTILE)
    assert outbox.message_send(message_id=sent.pk) == "accepted"
    sent.refresh_from_db()
    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.downloaded, result.errors) == (1, []), result.summary()
    received = Message.objects.get(
        direction=Direction.INBOUND, mesh_message_id=sent.mesh_message_id
    )
    assert received.filename == HOSTILE  # kept as MESH gave it, for the record
    assert_stored_safely(received)
    assert payload_bytes(received) == b"root:x:0:0\n"
    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[received.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="passwd"'
    assert b"".join(response.streaming_content) == b"root:x:0:0\n"


@pytest.mark.django_db
def test_an_uploaded_file_is_stored_under_a_generated_name(client, admin_user):
    from tests.factories import make_mailbox

    make_mailbox("X26ABC1")
    client.force_login(admin_user)
    upload = SimpleUploadedFile("../../etc/passwd", b"data", content_type="text/plain")
    data = {
        "mailbox": "X26ABC1",
        "recipient": "X26ABC2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "",
        "local_id": "",
        "file": upload,
    }
    assert client.post(reverse("messaging:send"), data).status_code == 302
    message = Message.objects.get()
    assert_stored_safely(message)
    assert "/" not in message.filename and ".." not in message.filename


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (HOSTILE, "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/etc/shadow", "shadow"),
        ('a"\r\nSet-Cookie: x=1', "a___Set-Cookie_ x_1"),
        ("..", None),
        ("", None),
    ],
)
def test_a_download_name_is_sanitised(client, admin_user, filename, expected):
    from tests.accounts.access import make_message
    from tests.factories import make_mailbox

    message = make_message(make_mailbox("X26ABC1"), filename=filename)
    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[message.pk]))
    response.close()
    name = expected or f"message-{message.pk}.dat"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert "Set-Cookie" not in response.headers or "x=1" not in response.headers.get(
        "Set-Cookie", ""
    )
    assert Path(message.payload.name).name != Path(filename).name or not filename
