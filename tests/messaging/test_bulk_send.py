"""Bulk send in the browser: many files to one recipient and workflow, each its own message through
the one send service. The page's script posts one file at a time asking for JSON (its progress);
without the script the form posts them all and the page lists each outcome."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.messaging.models import Message, Status
from tests.accounts.access import assert_no_inline_code
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


def files(*names: str) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, f"contents of {name}".encode(), "text/csv") for name in names]


def bulk_data(**overrides) -> dict:
    data = {"mailbox": "X26ABC1", "recipient": "x26abc2", "workflow_id": "TEST_WORKFLOW"}
    data.update(subject="Results", **overrides)
    return data


def test_it_queues_each_file_as_its_own_message(client, admin_user, mailbox):
    client.force_login(admin_user)
    names = ("a.csv", "b.csv", "c.csv")
    response = client.post(reverse("messaging:send_bulk"), bulk_data(files=files(*names)))
    assert response.status_code == 200
    sent = list(Message.objects.order_by("filename"))
    assert [m.filename for m in sent] == list(names)
    assert {(m.status, m.recipient, m.workflow_id) for m in sent} == {
        (Status.QUEUED, "X26ABC2", "TEST_WORKFLOW")
    }
    assert len({m.local_id for m in sent}) == 3  # each its own local id
    for message in sent:
        with message.payload.open("rb") as handle:
            assert handle.read() == f"contents of {message.filename}".encode()
    html = response.content.decode()
    for message in sent:
        assert reverse("messaging:detail", args=[message.pk]) in html
    queued = AuditRecord.objects.filter(action="message.queued", actor=admin_user)
    assert queued.count() == 3


def test_the_script_s_one_file_posts_answer_json(client, admin_user, mailbox):
    client.force_login(admin_user)
    url = reverse("messaging:send_bulk")
    response = client.post(url, bulk_data(files=files("one.csv")), HTTP_ACCEPT="application/json")
    (result,) = response.json()["results"]
    message = Message.objects.get()
    assert result == {
        "name": "one.csv",
        "ok": True,
        "text": "Queued",
        "url": reverse("messaging:detail", args=[message.pk]),
        "id": message.pk,
    }
    bad = client.post(
        url,
        bulk_data(workflow_id="NOT_REGISTERED", files=files("two.csv")),
        HTTP_ACCEPT="application/json",
    )
    assert bad.status_code == 400
    assert any("Workflow" in e["label"] for e in bad.json()["errors"])
    assert Message.objects.count() == 1


def test_the_page_loads_its_script_from_the_site_and_needs_a_file(client, admin_user, mailbox):
    client.force_login(admin_user)
    page = client.get(reverse("messaging:send_bulk")).content.decode()
    assert "js/bulk_send.js" in page and "data-bulk-send" in page and "multiple" in page
    assert_no_inline_code(page)
    response = client.post(reverse("messaging:send_bulk"), bulk_data())
    assert "Choose at least one file to send" in response.content.decode()
    assert not Message.objects.exists()


def test_only_senders_may_send_many(client, auditor_user, mailbox):
    client.force_login(auditor_user)
    assert client.get(reverse("messaging:send_bulk")).status_code == 403
    assert (
        client.post(reverse("messaging:send_bulk"), bulk_data(files=files("x.csv"))).status_code
        == 403
    )
    assert not Message.objects.exists()
