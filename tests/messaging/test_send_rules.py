"""Sends the worker could never deliver are refused when queued, with the reason on the right field."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal.messaging.models import Direction, Message, Status
from portal.messaging.services import SendRejected, message_requeue
from tests.accounts.access import make_message
from tests.factories import make_mailbox
from tests.onboarding.helpers import make_live_mailbox

from .helpers import queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"filename": "résumé.csv"}, "file", "The file's name must be ASCII"),
        ({"subject": "Line one\nline two"}, "subject", "The subject must not contain control"),
        ({"subject": "S" * 501}, "subject", "The subject is 501 characters long; MESH allows 500"),
        ({"local_id": "réf-1"}, "local_id", "The local id must be ASCII"),
        ({"local_id": "https://example.org/1"}, "local_id", "must not start with http"),
    ],
)
def test_it_refuses_header_values_mesh_would_reject(mailbox, kwargs, field, text):
    with pytest.raises(SendRejected) as refused:
        queue(mailbox, **kwargs)
    assert refused.value.field == field
    assert text in str(refused.value)
    assert not Message.objects.exists()


def test_the_send_form_shows_a_bad_filename_on_the_file_field(client, admin_user, mailbox):
    client.force_login(admin_user)
    upload = SimpleUploadedFile("résumé.csv", b"a,b\n", content_type="text/csv")
    data = {
        "mailbox": "X26ABC1",
        "recipient": "X26ABC2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "",
        "local_id": "",
        "file": upload,
    }
    response = client.post(reverse("messaging:send"), data)
    assert response.status_code == 200
    assert "The file's name must be ASCII" in " ".join(response.context["form"].errors["file"])
    assert not Message.objects.exists()


def test_mesh_send_refuses_a_bad_subject_with_a_clear_error(mailbox, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    with pytest.raises(CommandError, match="The subject must be ASCII"):
        call_command(
            "mesh_send",
            "X26ABC1",
            str(path),
            "--to",
            "X26ABC2",
            "--workflow",
            "TEST_WORKFLOW",
            "--subject",
            "Café results",
        )
    assert not Message.objects.exists()


def test_it_refuses_to_queue_from_a_disabled_mailbox(mailbox):
    mailbox.enabled = False
    mailbox.save()
    with pytest.raises(SendRejected, match="mailbox X26ABC1 is disabled") as refused:
        queue(mailbox)
    assert refused.value.field == "mailbox"
    assert not Message.objects.exists()


def test_mesh_send_refuses_a_disabled_mailbox_without_waiting(mailbox, tmp_path):
    mailbox.enabled = False
    mailbox.save()
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    with pytest.raises(CommandError, match="Cannot send now: mailbox X26ABC1 is disabled"):
        call_command(
            "mesh_send",
            "X26ABC1",
            str(path),
            "--to",
            "X26ABC2",
            "--workflow",
            "TEST_WORKFLOW",
            "--wait",
            "--timeout",
            "1",
        )
    assert not Message.objects.exists()


def test_the_send_form_refuses_a_live_mailbox_the_readiness_gate_holds(client, admin_user):
    live = make_live_mailbox(password="p", shared_key="k")
    live.workflows.create(workflow_id="TEST_WORKFLOW", direction="send")
    client.force_login(admin_user)
    data = {
        "mailbox": "X26LIVE1",
        "recipient": "X26ABC2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "",
        "local_id": "",
        "file": SimpleUploadedFile("a.txt", b"data"),
    }
    response = client.post(reverse("messaging:send"), data)
    errors = " ".join(response.context["form"].errors["mailbox"])
    assert "Cannot send now: live mailbox X26LIVE1 has no live onboarding plan" in errors
    assert not Message.objects.exists()


def test_it_refuses_to_resend_from_a_disabled_mailbox(mailbox):
    failed = make_message(mailbox, direction=Direction.OUTBOUND, status=Status.FAILED)
    mailbox.enabled = False
    mailbox.save()
    with pytest.raises(SendRejected, match="is disabled"):
        message_requeue(message=failed)
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
