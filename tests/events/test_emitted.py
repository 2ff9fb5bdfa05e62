"""Where things happen, an event is raised once, in the transaction of the change (real sandbox)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.certificates.models import Certificate
from portal.certificates.services import certificates_check_expiry
from portal.events.models import Event
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import mailbox_handshake
from portal.messaging import inbox, notices, outbox
from portal.messaging.models import Direction, Message, Status
from portal.messaging.services import message_refresh_tracking
from portal.onboarding.models import TaskStatus
from portal.onboarding.watch import onboarding_check_overdue
from tests.accounts.access import make_certificate, make_message
from tests.factories import make_mailbox
from tests.messaging.helpers import queue
from tests.onboarding.helpers import make_plan
from tests.sandbox import free_port

pytestmark = pytest.mark.django_db


def kinds():
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


@pytest.mark.sandbox
def test_a_received_message_and_its_acknowledgement_raise_one_event_each(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    sent = queue(sender, b"a,b\n", subject="Weekly extract")
    outbox.message_send(message_id=sent.pk)
    inbox.mailbox_poll(mailbox=recipient)
    inbox.mailbox_poll(mailbox=recipient)
    received = Event.objects.get(kind="message.received")
    stored = Message.objects.get(direction=Direction.INBOUND)
    assert (received.mailbox_id, received.message_id) == (recipient.pk, stored.pk)
    assert received.workflow == "TEST_WORKFLOW" and "Weekly extract" in received.summary
    assert received.data["sender"] == "X26ABC1"
    sent.refresh_from_db()
    message_refresh_tracking(message=sent)
    message_refresh_tracking(message=sent)
    acknowledged = Event.objects.get(kind="message.acknowledged")
    assert acknowledged.message_id == sent.pk and acknowledged.resolves
    assert acknowledged.problem_key == f"message:{sent.pk}:ack"


@pytest.mark.sandbox
def test_a_non_delivery_report_raises_one_event_naming_the_message_and_the_reason(
    sandbox_mailboxes, sandbox
):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"never collected", subject="Discharge")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    sandbox.report_not_collected(message)
    inbox.mailbox_poll(mailbox=sender)
    inbox.mailbox_poll(mailbox=sender)
    assert kinds() == ["message.ndr"]
    ndr = Event.objects.get()
    assert ndr.message_id == message.pk and ndr.severity == "error"
    assert message.mesh_message_id in ndr.summary and "Discharge" in ndr.summary
    assert "did not collect the message within 5 days" in ndr.data["reason"]


@pytest.mark.sandbox
def test_a_refused_send_raises_send_failed(sandbox_mailboxes):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"to nobody", to="NOSUCHBOX1")
    outbox.message_send(message_id=message.pk)
    failed = Event.objects.get(kind="message.send_failed")
    assert failed.message_id == message.pk
    assert "recipient mailbox is not registered" in failed.summary


def test_an_abandoned_send_raises_failed_or_uncertain(db):
    mailbox = make_mailbox("X26ABC1")
    stale = timezone.now() - timedelta(hours=1)
    common = {
        "direction": Direction.OUTBOUND,
        "status": Status.SENDING,
        "claimed_at": stale,
        "claimed_by": "dead",
        "attempts": outbox.MAX_ATTEMPTS,
    }
    make_message(mailbox, **common, mesh_message_id=None)
    outbox.outbox_sweep()
    assert kinds() == ["message.send_uncertain"]


@pytest.mark.sandbox
def test_ten_failing_polls_raise_one_event_and_the_fix_one_more(
    sandbox, settings, mesh_without_backoff
):
    settings.MAILBOX_POLL_FAILING_MINUTES = 15
    settings.MESH_BASE_URLS = {**settings.MESH_BASE_URLS, "sandbox": sandbox.url}
    mailbox = make_mailbox("X26ABC1", base_url=f"http://127.0.0.1:{free_port()}")
    inbox.mailbox_poll(mailbox=mailbox)
    assert not Event.objects.exists()  # failing, but not for 15 minutes yet
    Mailbox.objects.filter(pk=mailbox.pk).update(
        poll_failing_since=timezone.now() - timedelta(minutes=20)
    )
    for _ in range(9):
        inbox.mailbox_poll(mailbox=mailbox)
    assert kinds() == ["mailbox.poll_failing"]
    assert "Polls of X26ABC1 have been failing since" in Event.objects.get().summary
    Mailbox.objects.filter(pk=mailbox.pk).update(base_url="")
    mailbox.refresh_from_db()
    inbox.mailbox_poll(mailbox=mailbox)
    inbox.mailbox_poll(mailbox=mailbox)
    assert kinds() == ["mailbox.poll_failing", "mailbox.poll_recovered"]
    mailbox.refresh_from_db()
    assert mailbox.poll_failing_since is None


@pytest.mark.sandbox
def test_a_failing_handshake_raises_once_and_recovers_once(sandbox_mailboxes, mesh_without_backoff):
    mailbox, _ = sandbox_mailboxes
    Mailbox.objects.filter(pk=mailbox.pk).update(base_url=f"http://127.0.0.1:{free_port()}")
    mailbox.refresh_from_db()
    mailbox_handshake(mailbox=mailbox)
    mailbox_handshake(mailbox=mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(base_url="")
    mailbox.refresh_from_db()
    mailbox_handshake(mailbox=mailbox)
    mailbox_handshake(mailbox=mailbox)
    assert kinds() == ["mailbox.handshake_failing", "mailbox.handshake_recovered"]


def test_a_certificate_raises_once_per_threshold_then_expired(db):
    now = timezone.now()
    mailbox = make_mailbox("X26ABC1")
    certificate = make_certificate(
        mailbox, status=Certificate.Status.ACTIVE, not_after=now + timedelta(days=30, hours=-1)
    )
    for _ in range(2):
        certificates_check_expiry(now=now)
    event = Event.objects.get()
    assert (event.kind, event.data["threshold_days"]) == ("certificate.expiring", 30)
    assert "in 29 days" in event.summary
    for days in (17, 18, 24, 25, 29, 30):  # 14 and 7 once each; then 1; then expired
        certificates_check_expiry(now=now + timedelta(days=days))
    expiring = Event.objects.filter(kind="certificate.expiring").order_by("id")
    assert [e.data["threshold_days"] for e in expiring] == [30, 14, 7, 1]
    assert [e.severity for e in expiring] == ["warning", "warning", "error", "error"]
    assert Event.objects.filter(kind="certificate.expired").count() == 1
    certificate.refresh_from_db()
    assert certificate.status == Certificate.Status.EXPIRED


def test_a_certificate_found_inside_a_threshold_skips_the_larger_ones(db):
    make_certificate(
        make_mailbox("X26ABC1"),
        status=Certificate.Status.ACTIVE,
        not_after=timezone.now() + timedelta(days=5),
    )
    certificates_check_expiry()
    certificates_check_expiry()
    assert [e.data["threshold_days"] for e in Event.objects.all()] == [7]


def test_a_received_message_near_the_5_day_limit_raises_once(db):
    mailbox = make_mailbox("X26ABC1")
    stuck = make_message(mailbox, received_at=timezone.now() - timedelta(days=4, hours=2))
    make_message(mailbox, received_at=timezone.now() - timedelta(days=1))
    notices.messages_check_overdue()
    notices.messages_check_overdue()
    event = Event.objects.get()
    assert (event.kind, event.message_id) == ("message.inbound_expiring", stuck.pk)
    notices.inbound_acknowledged(stuck)
    assert kinds() == ["message.inbound_expiring", "message.inbound_acknowledged"]


def test_a_sent_message_not_acknowledged_in_time_raises_once(db, settings):
    settings.MESSAGING_ACK_EXPECTED_HOURS = 24
    mailbox = make_mailbox("X26ABC1")
    now = timezone.now()
    late = make_message(
        mailbox, direction=Direction.OUTBOUND, accepted_at=now - timedelta(hours=25)
    )
    make_message(mailbox, direction=Direction.OUTBOUND, accepted_at=now - timedelta(hours=2))
    notices.messages_check_overdue()
    notices.messages_check_overdue()
    event = Event.objects.get()
    assert (event.kind, event.message_id) == ("message.ack_overdue", late.pk)
    assert "longer than the 24 hours expected" in event.summary


def test_an_overdue_task_raises_once_and_resolves_when_done(db):
    plan = make_plan()
    task = plan.tasks.order_by("position").first()
    type(task).objects.filter(pk=task.pk).update(due_date=timezone.localdate() - timedelta(days=2))
    onboarding_check_overdue()
    onboarding_check_overdue()
    assert kinds() == ["onboarding.task_overdue"]
    type(task).objects.filter(pk=task.pk).update(status=TaskStatus.DONE)
    onboarding_check_overdue()
    onboarding_check_overdue()
    assert kinds() == ["onboarding.task_overdue", "onboarding.task_done"]
