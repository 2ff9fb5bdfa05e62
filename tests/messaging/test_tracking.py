"""Tracking refreshes move a sent message on, and never back."""

from __future__ import annotations

import pytest
import requests

from portal.messaging import inbox, outbox
from portal.messaging.models import Message, Status
from portal.messaging.services import message_refresh_tracking

from .helpers import queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def test_a_stale_reading_never_moves_a_failed_message_to_acknowledged(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"collected")
    outbox.message_send(message_id=message.pk)
    inbox.mailbox_poll(mailbox=recipient)  # MESH tracking now says acknowledged
    message.refresh_from_db()
    assert message.status == Status.ACCEPTED
    # While tracking runs on this copy, a non-delivery report fails the message in the database.
    Message.objects.filter(pk=message.pk).update(status=Status.FAILED, failure_reason="report")

    assert message_refresh_tracking(message=message) == "acknowledged"
    message.refresh_from_db()
    assert (message.status, message.failure_reason) == (Status.FAILED, "report")
    assert not message.events.filter(kind="tracked").exists()


def test_a_stale_reading_never_fails_a_message_a_person_requeued(sandbox_mailboxes, sandbox):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"undeliverable")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    # MESH gives up on it (the sandbox's admin API stands in for the 5 days).
    requests.post(
        f"{sandbox.url}/messageexchange/admin/message/{message.mesh_message_id}/event",
        json={"status": "undeliverable", "code": "14", "event": "TRANSFER"},
        timeout=10,
    ).raise_for_status()
    # Meanwhile a report failed it and a person re-queued it.
    Message.objects.filter(pk=message.pk).update(status=Status.QUEUED)

    assert message_refresh_tracking(message=message) == "undeliverable"
    message.refresh_from_db()
    assert message.status == Status.QUEUED
