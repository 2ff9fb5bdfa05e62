"""MESH's polling rule in the portal: "Poll now" at most once every 5 minutes, saying when next."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.mailboxes.models import Mailbox, Recipient, Workflow
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    # An NHS England environment: a local sandbox mailbox is not limited (below).
    return make_mailbox("X26ABC1", environment="integration")


def _poll_now(client, mailbox):
    response = client.post(reverse("mailboxes:poll", args=[mailbox.pk]))
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def test_it_allows_one_poll_now_then_says_when_the_next_is_allowed(
    client, admin_user, mailbox, task_queue
):
    client.force_login(admin_user)
    response, _ = _poll_now(client, mailbox)
    assert "task=" in response["Location"]
    assert task_queue.queue_size() == 1

    response, notes = _poll_now(client, mailbox)
    assert response["Location"] == reverse("mailboxes:detail", args=[mailbox.pk])
    assert task_queue.queue_size() == 1  # nothing more enqueued
    mailbox.refresh_from_db()
    allowed = timezone.localtime(mailbox.poll_requested_at + timedelta(minutes=5))
    assert f"the next poll of X26ABC1 is allowed at {allowed:%H:%M:%S}" in notes[-1]
    assert "at most once every 5 minutes" in notes[-1]
    assert AuditRecord.objects.filter(action="mailbox.poll_requested").count() == 1
    html = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert f'"Poll now" allowed again at {allowed:%H:%M:%S}' in html


def test_it_refuses_poll_now_within_5_minutes_of_the_last_scheduled_poll(
    client, admin_user, mailbox, task_queue
):
    client.force_login(admin_user)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_poll_at=timezone.now() - timedelta(minutes=4))
    _, notes = _poll_now(client, mailbox)
    assert "is allowed at" in notes[-1]
    assert task_queue.queue_size() == 0

    Mailbox.objects.filter(pk=mailbox.pk).update(last_poll_at=timezone.now() - timedelta(minutes=5))
    response, _ = _poll_now(client, mailbox)
    assert "task=" in response["Location"]
    assert task_queue.queue_size() == 1


def test_the_poll_interval_setting_refuses_less_than_5_minutes(mailbox):
    from django.core.exceptions import ValidationError

    mailbox.poll_interval_minutes = 4
    with pytest.raises(ValidationError, match="at most once every 5 minutes"):
        mailbox.full_clean()


def test_a_workflow_can_be_registered_for_recipients_without_chunked_messages(
    client, admin_user, mailbox
):
    client.force_login(admin_user)
    client.post(
        reverse("mailboxes:workflow_add", args=[mailbox.pk]),
        {"workflow_id": "OLD_CLIENTS", "direction": "send"},  # the box left unticked
    )
    assert Workflow.objects.get(workflow_id="OLD_CLIENTS").accepts_chunked is False
    html = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert "No chunked messages" in html
    assert "MESH UI and older MESH clients cannot receive chunked messages" in html


def test_recipient_rules_are_audited(mailbox):
    Recipient.objects.create(mailbox_id="x26old1", accepts_chunked=False)
    assert Recipient.objects.get().mailbox_id == "X26OLD1"
    assert AuditRecord.objects.filter(object_type__icontains="recipient").exists()


def test_a_sandbox_mailbox_may_poll_now_at_any_time(client, admin_user, task_queue):
    sandbox = make_mailbox("X26ABC3")
    client.force_login(admin_user)
    for _ in range(2):
        response, _ = _poll_now(client, sandbox)
        assert "task=" in response["Location"]
    assert task_queue.queue_size() == 2
