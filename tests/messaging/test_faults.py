"""Faults no real peer produces on demand (a lost response, a 503 burst), around the real sandbox.

`responses` intercepts only the failing call; everything else passes through to mesh-sandbox.
"""

from __future__ import annotations

import re
import urllib.request

import pytest
import responses
from requests.exceptions import ConnectionError as RequestsConnectionError

from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status

from .helpers import queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def _forward(request) -> bytes:
    """Send the intercepted request to the real sandbox with urllib (which responses does not patch)."""
    body = request.body if isinstance(request.body, bytes | type(None)) else b"".join(request.body)
    forwarded = urllib.request.Request(
        request.url, data=body, method=request.method, headers=dict(request.headers)
    )
    with urllib.request.urlopen(forwarded, timeout=10) as answer:
        return answer.read()


@pytest.fixture
def mocked(sandbox):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(re.escape(sandbox.url) + ".*"))
        yield mock


def test_a_lost_response_to_the_first_upload_never_duplicates_the_message(
    sandbox_mailboxes, sandbox, mocked
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"exactly once")
    delivered = []

    def deliver_then_drop(request):
        delivered.append(_forward(request))  # MESH really accepts it...
        raise RequestsConnectionError("Connection reset by peer")  # ...but the answer is lost.

    outbox_url = re.compile(re.escape(sandbox.url) + r"/messageexchange/X26ABC1/outbox$")
    mocked.add_callback(responses.POST, outbox_url, callback=deliver_then_drop)
    assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    message.refresh_from_db()
    assert len(delivered) == 1 and message.mesh_message_id is None
    assert "Outcome of the first upload unknown" in message.last_error

    mocked.remove(responses.POST, outbox_url)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    assert message.mesh_message_id  # found by its local id, not sent again

    result = inbox.mailbox_poll(mailbox=recipient)
    assert result.listed == 1
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1


def test_a_503_burst_on_the_first_upload_is_retried_later_and_sent_once(
    sandbox_mailboxes, sandbox, mocked
):
    sender, recipient = sandbox_mailboxes
    message = queue(sender, b"after the burst")
    outbox_url = re.compile(re.escape(sandbox.url) + r"/messageexchange/X26ABC1/outbox$")
    mocked.add(responses.POST, outbox_url, status=503, body="<html>Service Unavailable</html>")
    assert outbox.message_send(message_id=message.pk) == Status.QUEUED

    mocked.remove(responses.POST, outbox_url)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert inbox.mailbox_poll(mailbox=recipient).downloaded == 1


def test_a_503_burst_while_polling_is_ridden_out_by_retries(
    sandbox_mailboxes, sandbox, mocked, monkeypatch
):
    sender, recipient = sandbox_mailboxes
    outbox.message_send(message_id=queue(sender, b"polled through a burst").pk)
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # backoff without waiting
    inbox_url = re.compile(re.escape(sandbox.url) + r"/messageexchange/X26ABC2/inbox(\?.*)?$")
    for _ in range(2):
        mocked.add(responses.GET, inbox_url, status=503)
    mocked.add(responses.PassthroughResponse(responses.GET, inbox_url))  # then MESH recovers

    result = inbox.mailbox_poll(mailbox=recipient)
    assert (result.downloaded, result.acknowledged, result.errors) == (1, 1, [])
    assert (
        len([c for c in mocked.calls if c.response is not None and c.response.status_code == 503])
        == 2
    )


@pytest.mark.parametrize("width", [1, 3])
def test_a_poll_stops_at_once_when_mesh_goes_away(
    sandbox_mailboxes, sandbox, mocked, monkeypatch, settings, width
):
    sender, recipient = sandbox_mailboxes
    for n in range(16):
        outbox.message_send(message_id=queue(sender, f"message {n}".encode()).pk)
    settings.POLL_CONCURRENCY = width
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    download_url = re.compile(re.escape(sandbox.url) + r"/messageexchange/X26ABC2/inbox/[0-9A-F]+$")
    mocked.add(responses.GET, download_url, body=RequestsConnectionError("Connection refused"))

    result = inbox.mailbox_poll(mailbox=recipient)
    # One error ends the poll: it does not try (and time out on) every other message. Only those
    # already handed out (at most four times `width`, and the one that finds the poll stopped) are
    # listed; those not started are not tried.
    assert (result.downloaded, len(result.errors)) == (0, 1)
    assert result.listed <= 4 * width + 1 < 16
    tried = {call.request.url for call in mocked.calls if download_url.match(call.request.url)}
    assert len(tried) <= width
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 0
    recipient.refresh_from_db()
    assert recipient.last_poll_ok is False


def test_a_message_mesh_keeps_failing_to_serve_is_backed_off_so_the_rest_gets_through(
    sandbox_mailboxes, sandbox, mocked, monkeypatch, settings
):
    from portal.events.models import Event
    from portal.messaging.models import InboundFailure

    # One at a time, so the message behind the stuck one waits for the next poll (with several
    # at once it may be received beside it in the first); it may be handed out already, but the
    # error stops the poll before it is started.
    settings.POLL_CONCURRENCY = 1
    sender, recipient = sandbox_mailboxes
    for n in range(2):
        outbox.message_send(message_id=queue(sender, f"message {n}".encode()).pk)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with inbox.mesh_client(recipient) as client:
        stuck = next(client.iter_inbox())
    stuck_url = f"{sandbox.url}/messageexchange/X26ABC2/inbox/{stuck}"
    mocked.add(responses.GET, stuck_url, status=500)  # every time: MESH cannot serve this one

    first = inbox.mailbox_poll(mailbox=recipient)
    assert (first.downloaded, len(first.errors)) == (0, 1)  # the poll stops
    assert first.listed in (1, 2)
    failure = InboundFailure.objects.get(mesh_message_id=stuck)
    assert failure.status == InboundFailure.State.BACKING_OFF
    assert not Event.objects.filter(kind__startswith="message.").exists()  # no alert per poll

    second = inbox.mailbox_poll(mailbox=recipient)  # held back: the one behind it is received
    assert (second.held, second.downloaded, second.acknowledged, second.errors) == (1, 1, 1, [])

    for _ in range(6):  # MESH failing is never enough to quarantine a message
        InboundFailure.objects.filter(pk=failure.pk).update(next_attempt_at=None)
        inbox.mailbox_poll(mailbox=recipient)
    failure.refresh_from_db()
    assert failure.status == InboundFailure.State.BACKING_OFF and failure.failures == 7
