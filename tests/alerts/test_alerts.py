"""Alerts end to end: real sandbox, real SMTP server, real HTTP receiver checking the signature."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.alerts.models import Alert, Channel, Notification, Rule
from portal.alerts.services import channels_failing, digests_send, notification_send
from portal.audit.models import AuditRecord
from portal.certificates.models import Certificate
from portal.certificates.services import certificates_check_expiry
from portal.events.services import event_emit
from portal.mailboxes.models import Mailbox
from portal.messaging import inbox, outbox
from tests.accounts.access import make_certificate
from tests.factories import make_mailbox
from tests.messaging.helpers import queue
from tests.sandbox import free_port

from .conftest import deliver_all

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script> *bold* [click](http://evil.example) <!channel> &amp;"


@pytest.mark.sandbox
def test_an_ndr_from_the_sandbox_makes_exactly_one_email_and_one_webhook(
    sandbox_mailboxes, sandbox, channels, smtp, receiver
):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"never collected", subject="Discharge summary")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    sandbox.report_not_collected(message)
    inbox.mailbox_poll(mailbox=sender)
    deliver_all()
    inbox.mailbox_poll(mailbox=sender)
    deliver_all()
    assert len(smtp.messages) == 1 and len(receiver.requests) == 1
    mail = smtp.messages[0]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for body in (mail["Subject"], text, html):
        assert message.mesh_message_id in body
    assert "did not collect the message within 5 days" in text
    hook = receiver.requests[0]
    assert hook["signed"]
    assert hook["json"]["alert"]["kind"] == "message.ndr"
    assert hook["json"]["alert"]["message_id"] == message.pk
    assert "did not collect the message within 5 days" in hook["json"]["alert"]["data"]["reason"]
    assert Alert.objects.get().kind == "message.ndr"


@pytest.mark.sandbox
def test_ten_failing_polls_make_one_alert_and_the_fix_one_resolved(
    sandbox, settings, channels, smtp, receiver, mesh_without_backoff
):
    settings.MAILBOX_POLL_FAILING_MINUTES = 0
    settings.MESH_BASE_URLS = {**settings.MESH_BASE_URLS, "sandbox": sandbox.url}
    mailbox = make_mailbox("X26ABC1", base_url=f"http://127.0.0.1:{free_port()}")
    for _ in range(10):
        inbox.mailbox_poll(mailbox=mailbox)
        deliver_all()
    assert len(smtp.messages) == 1 and len(receiver.requests) == 1
    assert "Polls of X26ABC1 have been failing" in smtp.messages[0]["Subject"]
    Mailbox.objects.filter(pk=mailbox.pk).update(base_url="")
    mailbox.refresh_from_db()
    for _ in range(3):
        inbox.mailbox_poll(mailbox=mailbox)
        deliver_all()
    assert len(smtp.messages) == 2 and len(receiver.requests) == 2
    assert smtp.messages[1]["Subject"].startswith("[NeoMesh] Resolved: Polls of X26ABC1 succeed")
    assert receiver.requests[1]["json"]["purpose"] == "resolved"
    alert = Alert.objects.get()
    assert alert.resolved_at is not None


def test_a_certificate_30_days_from_expiry_alerts_once_per_threshold(channels, smtp, settings):
    Rule.objects.update(min_severity="warning")
    now = timezone.now()
    make_certificate(
        make_mailbox("X26ABC1"),
        status=Certificate.Status.ACTIVE,
        not_after=now + timedelta(days=30, hours=-1),
    )
    for days in (0, 1, 2):
        certificates_check_expiry(now=now + timedelta(days=days))
        deliver_all()
    assert len(smtp.messages) == 1 and "expires on" in smtp.messages[0]["Subject"]
    certificates_check_expiry(now=now + timedelta(days=17))
    deliver_all()
    assert len(smtp.messages) == 2 and "in 12 days" in smtp.messages[1]["Subject"]


def _emit_error(summary="Send of message X failed: refused", **kwargs):
    return event_emit(kind="message.send_failed", severity="error", summary=summary, **kwargs)


def test_a_channel_that_refuses_mail_is_retried_then_shown_failing(
    channels, smtp, client, admin_user
):
    mail, _ = channels
    smtp.room.refuse = True
    _emit_error()
    now = timezone.now()
    deliver_all(now)
    notification = Notification.objects.get(channel=mail)
    assert notification.status == "pending" and notification.attempts == 1
    assert "did not take it" in notification.last_error
    for _attempt in range(2, 6):
        now += timedelta(hours=2)
        notification_send(notification_id=notification.pk, now=now)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 5)
    assert list(channels_failing()) == [mail]
    assert AuditRecord.objects.filter(action="alert.failed").count() == 1
    assert AuditRecord.objects.filter(action="alert.retry").count() == 4
    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert "Alert channel &ldquo;Ops mail&rdquo; is failing" in page
    # It works again: the next alert goes through and the channel is no longer failing.
    smtp.room.refuse = False
    _emit_error("Another failure")
    deliver_all()
    assert not channels_failing().exists() and len(smtp.messages) == 1


def test_hostile_text_is_escaped_in_email_and_sent_as_text_in_chat(db, smtp, receiver, settings):
    mail = Channel.objects.create(name="Mail", kind="email", recipients="ops@example.org")
    hook = Channel.objects.create(name="Hook", kind="webhook", url=receiver.url, secret="s" * 20)
    slack = Channel.objects.create(name="Slack", kind="slack", url=receiver.url)
    teams = Channel.objects.create(name="Teams", kind="teams", url=receiver.url)
    rule = Rule.objects.create(name="All", min_severity="info")
    rule.channels.add(mail, hook, slack, teams)
    deliver_all()
    _emit_error(f"Send of message 1 \u201c{HOSTILE}\u201d failed\r\nBcc: victim@example.org")
    deliver_all()
    message = smtp.messages[0]
    assert "Bcc" not in message or message["Bcc"] is None
    assert "\n" not in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="http://evil' not in html
    by_kind = {}
    for request in receiver.requests:
        body = request["json"]
        kind = "slack" if "blocks" in body else "teams" if "attachments" in body else "webhook"
        by_kind[kind] = body
    slack_body = by_kind["slack"]
    assert all(block["text"]["type"] == "plain_text" for block in slack_body["blocks"])
    assert "<!channel>" not in slack_body["text"] and "&lt;!channel&gt;" in slack_body["text"]
    card_text = by_kind["teams"]["attachments"][0]["content"]["body"][0]["text"]
    assert r"\*bold\*" in card_text and r"\[click\]\(http://evil" in card_text.replace(
        r"\.", "."
    ).replace(r"\-", "-")
    assert HOSTILE in by_kind["webhook"]["alert"]["summary"]  # data, for the receiver to escape


def test_bad_addresses_and_urls_are_refused_in_plain_english(db):
    with pytest.raises(ValidationError, match="not an email address"):
        Channel(name="Bad", kind="email", recipients="ops@example.org, not-an-address").full_clean()
    with pytest.raises(ValidationError, match="https://"):
        Channel(name="Bad", kind="slack", url="http://hooks.example.org/x").full_clean()
    with pytest.raises(ValidationError, match="full web address"):
        Channel(name="Bad", kind="teams", url="javascript:alert(1)").full_clean()
    with pytest.raises(ValidationError, match="signing secret"):
        Channel(
            name="Bad", kind="webhook", url="https://example.org/hook", secret="short"
        ).full_clean()
    Channel(
        name="Good", kind="webhook", url="https://example.org/hook", secret="x" * 16
    ).full_clean()


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("redirect", "redirect (302); redirects are not followed"),
        ("slow", "did not answer within 1 seconds"),
        ("refuse", "refused it (HTTP 500)"),
    ],
)
def test_a_slow_redirecting_or_refusing_webhook_is_a_recorded_failure(
    db, receiver, settings, mode, reason
):
    settings.ALERTS_SEND_TIMEOUT_SECONDS = 1
    receiver.mode = mode
    hook = Channel.objects.create(name="Hook", kind="webhook", url=receiver.url, secret="s" * 20)
    Rule.objects.create(name="All", min_severity="info").channels.add(hook)
    deliver_all()
    _emit_error()
    deliver_all()
    notification = Notification.objects.get()
    assert notification.status == "pending" and reason in notification.last_error
    assert receiver.url not in notification.last_error  # the address may hold a secret
    assert len(receiver.requests) == 1  # the redirect was not followed


def test_a_digest_rule_sends_one_message_a_day(db, smtp):
    mail = Channel.objects.create(name="Mail", kind="email", recipients="ops@example.org")
    rule = Rule.objects.create(name="Digest", min_severity="warning", digest=True)
    rule.channels.add(mail)
    deliver_all()
    for n in range(3):
        _emit_error(f"Failure {n}")
    deliver_all()
    assert smtp.messages == []
    assert digests_send() == 1
    assert len(smtp.messages) == 1 and "3 alert(s)" in smtp.messages[0]["Subject"]
    assert digests_send() == 0


def test_rules_filter_by_kind_mailbox_and_workflow(db, smtp):
    mail = Channel.objects.create(name="Mail", kind="email", recipients="ops@example.org")
    mailbox = make_mailbox("X26ABC1")
    rule = Rule.objects.create(
        name="Narrow",
        min_severity="info",
        kinds=["message.send_failed"],
        mailbox=mailbox,
        workflow="PATH_*",
    )
    rule.channels.add(mail)
    deliver_all()
    _emit_error("other mailbox", mailbox_id=mailbox.pk + 1, workflow="PATH_A")
    _emit_error("other workflow", mailbox_id=mailbox.pk, workflow="OTHER")
    event_emit(
        kind="message.ndr",
        severity="error",
        summary="other kind",
        mailbox_id=mailbox.pk,
        workflow="PATH_A",
    )
    _emit_error("this one", mailbox_id=mailbox.pk, workflow="PATH_A")
    deliver_all()
    assert [m["Subject"] for m in smtp.messages] == ["[NeoMesh] Error: this one"]
