"""Business acknowledgements (<WORKFLOW>_ACK) linked to the message they acknowledge, shown on both
pages, and an event when one is overdue. Against the real mesh-sandbox (TEST_WORKFLOW_ACK)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.events.models import Event
from portal.mailboxes.models import Workflow
from portal.messaging import acks, inbox, outbox
from portal.messaging.models import Direction, Message, Status

from .helpers import queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


@pytest.fixture
def pair(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    Workflow.objects.create(mailbox=recipient, workflow_id="TEST_WORKFLOW_ACK", direction="send")
    Workflow.objects.create(mailbox=sender, workflow_id="TEST_WORKFLOW_ACK", direction="receive")
    return sender, recipient


def _send(mailbox, **kwargs) -> Message:
    message = queue(mailbox, **kwargs)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    return message


def _ack_back(sender, recipient, **kwargs) -> Message:
    """The recipient receives, then answers on TEST_WORKFLOW_ACK; the sender polls."""
    inbox.mailbox_poll(mailbox=recipient)
    _send(recipient, to=sender.mailbox_id, workflow="TEST_WORKFLOW_ACK", **kwargs)
    result = inbox.mailbox_poll(mailbox=sender)
    assert result.ok, result.summary()
    return Message.objects.get(mailbox=sender, direction=Direction.INBOUND)


def test_an_ack_is_linked_by_local_id_and_shown_on_both_pages(pair, client, admin_user):
    sender, recipient = pair
    original = _send(sender, local_id="batch-42")
    other = _send(sender, local_id="batch-43")
    ack = _ack_back(sender, recipient, local_id="batch-42")
    assert ack.acknowledges == original
    assert list(original.business_acks.all()) == [ack]
    assert not other.business_acks.exists()
    assert original.events.filter(kind="business_ack").exists()
    assert AuditRecord.objects.filter(action="message.business_ack_linked").exists()

    client.force_login(admin_user)
    page = client.get(reverse("messaging:detail", args=[original.pk])).content.decode()
    assert "Business acknowledgement" in page and reverse("messaging:detail", args=[ack.pk]) in page
    page = client.get(reverse("messaging:detail", args=[ack.pk])).content.decode()
    assert "acknowledges" in page and reverse("messaging:detail", args=[original.pk]) in page


def test_an_ack_can_name_our_message_by_its_mesh_id_in_a_configured_rule(pair):
    sender, recipient = pair
    Workflow.objects.filter(mailbox=sender, workflow_id="TEST_WORKFLOW", direction="send").update(
        business_ack_match=Workflow.AckMatch.MESSAGE_ID
    )
    original = _send(sender, local_id="batch-42")
    ack = _ack_back(sender, recipient, local_id=original.mesh_message_id)
    assert ack.acknowledges == original


def test_an_unmatched_ack_is_stored_unlinked(pair):
    sender, recipient = pair
    _send(sender, local_id="batch-42")
    ack = _ack_back(sender, recipient, local_id="someone-elses-ref")
    assert ack.acknowledges is None


def test_an_overdue_business_ack_raises_one_event_and_its_arrival_resolves_it(pair):
    sender, recipient = pair
    Workflow.objects.filter(mailbox=sender, workflow_id="TEST_WORKFLOW", direction="send").update(
        business_ack_hours=2
    )
    original = _send(sender, local_id="batch-42")
    assert acks.business_acks_check_overdue() == 0  # not due yet
    Message.objects.filter(pk=original.pk).update(accepted_at=timezone.now() - timedelta(hours=3))
    assert acks.business_acks_check_overdue() == 1
    assert acks.business_acks_check_overdue() == 0  # once
    event = Event.objects.get(kind="message.business_ack_overdue")
    assert event.message_id == original.pk and event.problem_key == acks.problem_key(original)
    assert "within the 2 hours expected" in event.summary

    _ack_back(sender, recipient, local_id="batch-42")
    resolved = Event.objects.get(kind="message.business_ack_received")
    assert resolved.resolves and resolved.problem_key == acks.problem_key(original)
