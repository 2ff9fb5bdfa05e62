from __future__ import annotations

import pytest

from portal.alerts.models import Channel, Rule
from portal.events.services import events_dispatch

from .peers import Receiver, SmtpServer

SECRET = "a-long-signing-secret-for-tests"


@pytest.fixture
def smtp(settings):
    with SmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        yield server


@pytest.fixture
def receiver():
    with Receiver(SECRET) as server:
        yield server


@pytest.fixture
def channels(db, smtp, receiver):
    """An email channel and a signed webhook, every error or worse to both."""
    mail = Channel.objects.create(name="Ops mail", kind="email", recipients="ops@example.org")
    hook = Channel.objects.create(name="Ops hook", kind="webhook", url=receiver.url, secret=SECRET)
    rule = Rule.objects.create(name="Errors", min_severity="error")
    rule.channels.add(mail, hook)
    events_dispatch()  # the alerts consumer's cursor starts here
    return mail, hook


def deliver_all(now=None):
    """What the workers do: publish and dispatch events, then send every due notification."""
    from portal.alerts.models import Notification
    from portal.alerts.services import notification_send

    events_dispatch(now=now)
    for pk in Notification.objects.filter(status="pending").values_list("pk", flat=True):
        notification_send(notification_id=pk, now=now)


@pytest.fixture(autouse=True)
def _one_receiver(settings):
    """Receive on the poll's own thread: a test's transaction would lock out receiver threads."""
    settings.POLL_CONCURRENCY = 1
