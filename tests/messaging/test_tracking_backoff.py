"""Tracking backs off (5 minutes, 1 hour, 6 hours, then daily to MESH's 5-day expiry) and stops at
a final state; a person may refresh once every 5 minutes; the acknowledged time is MESH's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

import meshcore
from portal.audit.models import AuditRecord
from portal.messaging import inbox, outbox, tasks
from portal.messaging.models import Message, Status, next_track_at
from portal.messaging.services import message_refresh_tracking, messages_to_track

from .helpers import queue

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_schedule_backs_off_then_goes_daily_until_just_after_the_5_day_expiry():
    looks, last, tracked = [], None, 0
    while (due := next_track_at(accepted_at=T0, tracked=tracked, last=last)) is not None:
        looks.append(due - T0)
        last, tracked = due, tracked + 1
    assert looks == [
        timedelta(minutes=5),
        timedelta(hours=1, minutes=5),
        timedelta(hours=7, minutes=5),
        timedelta(days=1, hours=7, minutes=5),
        timedelta(days=2, hours=7, minutes=5),
        timedelta(days=3, hours=7, minutes=5),
        timedelta(days=4, hours=7, minutes=5),
        timedelta(days=5, hours=1),
    ]


def _accepted(sender) -> Message:
    message = queue(sender, b"track me")
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    return message


def _make_due(message):
    Message.objects.filter(pk=message.pk).update(
        next_track_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_it_tracks_on_the_backoff_and_stops_at_acknowledged(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    message = _accepted(sender)
    assert message.next_track_at == message.accepted_at + timedelta(minutes=5)
    assert not messages_to_track().exists()  # not due yet

    _make_due(message)
    assert tasks.refresh_tracking() == 1
    message.refresh_from_db()
    assert (message.status, message.tracked_count) == (Status.ACCEPTED, 1)
    assert message.next_track_at == message.last_tracked_at + timedelta(hours=1)
    assert tasks.refresh_tracking() == 0

    inbox.mailbox_poll(mailbox=recipient)  # downloaded and acknowledged
    _make_due(message)
    assert tasks.refresh_tracking() == 1
    message.refresh_from_db()
    assert message.status == Status.ACKNOWLEDGED
    assert message.next_track_at is None  # final: never tracked again
    # The sandbox gives no time with an acknowledgement (the live service does: below).
    assert message.acknowledged_at == message.last_tracked_at
    assert "MESH gave no time" in message.events.last().detail


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_the_acknowledged_time_is_meshs_status_timestamp(sandbox_mailboxes, monkeypatch):
    """The live service's status_timestamp, which the sandbox never sends, added to its answer."""
    sender, recipient = sandbox_mailboxes
    message = _accepted(sender)
    inbox.mailbox_poll(mailbox=recipient)
    meshs_time = datetime(2026, 12, 3, 4, 5, 6, tzinfo=UTC)
    real_track = meshcore.MeshClient.track

    def track_with_time(self, message_id):
        return dataclasses.replace(real_track(self, message_id), status_timestamp=meshs_time)

    monkeypatch.setattr(meshcore.MeshClient, "track", track_with_time)
    assert message_refresh_tracking(message=message) == "acknowledged"
    message.refresh_from_db()
    assert message.acknowledged_at == meshs_time
    assert "acknowledged it at 2026-12-03 04:05:06 UTC" in message.events.last().detail


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_a_person_can_refresh_tracking_once_every_5_minutes(client, admin_user, sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = _accepted(sender)
    client.force_login(admin_user)
    url = reverse("messaging:track", args=[message.pk])

    response = client.post(url)
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert notes[-1] == "MESH tracking says: accepted."
    message.refresh_from_db()
    assert message.last_tracked_at is not None
    assert message.tracked_count == 0  # a person's look leaves the schedule alone
    assert AuditRecord.objects.filter(action="message.track_requested").count() == 1

    response = client.post(url)
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    allowed = timezone.localtime(message.last_tracked_at + timedelta(minutes=5))
    assert f"the next refresh of this message is allowed at {allowed:%H:%M:%S}" in notes[-1]
    assert AuditRecord.objects.filter(action="message.track_requested").count() == 1

    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert "Refresh tracking now" in html and "next look" in html
