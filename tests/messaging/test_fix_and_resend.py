"""Fix and resend: a failed message copied into a new send, its fields editable."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.messaging.models import Direction, Message, Status
from tests.factories import make_mailbox

from .helpers import payload_bytes, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(db):
    mailbox = make_mailbox("X26ABC1")
    message = queue(
        mailbox,
        b"a,b\n1,2\n",
        to="X26WRONG",
        subject="Results",
        filename="r.csv",
        local_id="batch-7",
    )
    Message.objects.filter(pk=message.pk).update(status=Status.FAILED, failure_reason="Unknown")
    message.refresh_from_db()
    return message


def test_the_form_is_filled_in_from_the_failed_message(client, admin_user, failed):
    client.force_login(admin_user)
    response = client.get(reverse("messaging:fix", args=[failed.pk]))
    form = response.context["form"]
    assert (form["recipient"].value(), form["subject"].value(), form["local_id"].value()) == (
        "X26WRONG",
        "Results",
        "batch-7",
    )
    assert "Leave empty to send the same file again (r.csv" in response.content.decode()


def test_it_queues_a_corrected_copy_with_the_same_file(client, admin_user, failed, task_queue):
    client.force_login(admin_user)
    data = {
        "mailbox": "X26ABC1",
        "recipient": "x26abc2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "Results (corrected)",
        "local_id": "batch-7b",
    }
    response = client.post(reverse("messaging:fix", args=[failed.pk]), data)
    copy = Message.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == reverse("messaging:detail", args=[copy.pk])
    assert (copy.recipient, copy.subject, copy.local_id, copy.status) == (
        "X26ABC2",
        "Results (corrected)",
        "batch-7b",
        Status.QUEUED,
    )
    assert (copy.copied_from, copy.filename, copy.direction) == (
        failed,
        "r.csv",
        Direction.OUTBOUND,
    )
    assert payload_bytes(copy) == b"a,b\n1,2\n" and copy.payload.name != failed.payload.name
    failed.refresh_from_db()
    assert failed.status == Status.FAILED  # the failed one stays as it was
    assert failed.events.filter(kind="copied").exists()
    record = AuditRecord.objects.filter(action="message.queued").latest("seq")
    assert f"a fixed copy of failed message #{failed.pk}" in record.detail
    page = client.get(reverse("messaging:detail", args=[failed.pk])).content.decode()
    assert reverse("messaging:detail", args=[copy.pk]) in page


def test_it_can_replace_the_file_and_still_applies_every_rule(client, admin_user, failed):
    client.force_login(admin_user)
    data = {
        "mailbox": "X26ABC1",
        "recipient": "X26ABC2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "",
        "local_id": "9434765919",
    }
    response = client.post(reverse("messaging:fix", args=[failed.pk]), data)
    assert "must not contain patient identifiable data" in " ".join(
        response.context["form"].errors["local_id"]
    )
    data |= {
        "local_id": "",
        "file": SimpleUploadedFile("new.csv", b"x,y\n", content_type="text/csv"),
    }
    client.post(reverse("messaging:fix", args=[failed.pk]), data)
    copy = Message.objects.exclude(pk=failed.pk).get()
    assert (copy.filename, payload_bytes(copy)) == ("new.csv", b"x,y\n")


def test_only_a_failed_message_can_be_fixed(client, admin_user, failed):
    Message.objects.filter(pk=failed.pk).update(status=Status.ACCEPTED)
    client.force_login(admin_user)
    response = client.post(reverse("messaging:fix", args=[failed.pk]), {})
    assert response["Location"] == reverse("messaging:detail", args=[failed.pk])
    assert Message.objects.count() == 1


def test_a_person_without_send_permission_cannot_fix(client, auditor_user, failed):
    client.force_login(auditor_user)
    assert client.get(reverse("messaging:fix", args=[failed.pk])).status_code == 403
