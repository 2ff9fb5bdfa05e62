"""MESH's request limit per mailbox, and recipients that cannot take chunked messages.

Against the real mesh-sandbox: a message that fits the limit after compression goes in one
request, a larger one in chunks; a message that would need chunks to a recipient that cannot take
them is refused when queued, before anything is stored or sent.
"""

from __future__ import annotations

import os

import pytest

import meshcore
from portal.mailboxes.models import Mailbox, Recipient, RequestLimit, Workflow
from portal.mailboxes.services import mesh_client
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, Message, Status
from portal.messaging.services import SendRejected
from tests.factories import make_mailbox

from .helpers import payload_bytes, queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]

# A small limit keeps the payloads small; meshcore applies it exactly as it does 20,000,000.
LIMIT = 50_000
CSV = b"".join(b"%d,patient-free,row,data,2026-12-03\n" % i for i in range(8_000))  # ~300 KB


@pytest.fixture
def limited(sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    Mailbox.objects.filter(pk=sender.pk).update(max_request_bytes=LIMIT)
    sender.refresh_from_db()
    return sender, recipient


def _received(recipient, message) -> Message:
    result = inbox.mailbox_poll(mailbox=recipient)
    assert result.ok and result.listed, result.summary()
    message.refresh_from_db()
    return Message.objects.get(direction=Direction.INBOUND, mesh_message_id=message.mesh_message_id)


def test_it_gives_every_mailbox_the_internet_limit_and_passes_it_to_meshcore(sandbox):
    mailbox = make_mailbox("X26ABC1")
    assert mailbox.max_request_bytes == RequestLimit.INTERNET == 20_000_000
    with mesh_client(mailbox) as client:
        assert client.max_request_bytes == 20_000_000
        assert client.chunk_size is None  # meshcore decides the layout from the limit
    Mailbox.objects.filter(pk=mailbox.pk).update(max_request_bytes=RequestLimit.HSCN)
    mailbox.refresh_from_db()
    with mesh_client(mailbox) as client:
        assert client.max_request_bytes == 100_000_000


def test_it_sends_a_compressible_message_larger_than_the_limit_in_one_request(limited):
    sender, recipient = limited
    assert len(CSV) > 5 * LIMIT
    message = queue(sender, CSV)
    assert message.max_request_bytes == LIMIT
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    assert (message.chunks_done, message.chunks_total) == (1, 1)
    assert payload_bytes(_received(recipient, message)) == CSV


def test_it_sends_random_data_over_the_limit_in_chunks_that_fit(limited):
    sender, recipient = limited
    data = os.urandom(3 * LIMIT)
    message = queue(sender, data)
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    message.refresh_from_db()
    expected = -(-len(data) // meshcore.max_chunk_size(LIMIT))
    assert message.chunks_total == expected == 4
    assert payload_bytes(_received(recipient, message)) == data


def test_it_refuses_at_queue_time_a_chunked_message_to_a_recipient_that_cannot_take_one(limited):
    sender, _ = limited
    Recipient.objects.create(mailbox_id="X26ABC2", accepts_chunked=False)
    with pytest.raises(SendRejected) as refused:
        queue(sender, os.urandom(2 * LIMIT))
    assert refused.value.field == "file"
    text = str(refused.value)
    assert "the recipient does not accept chunked messages" in text
    assert "X26ABC2 does not accept chunked messages" in text
    assert "Nothing was sent" in text
    assert not Message.objects.exists()


def test_it_sends_whole_to_a_no_chunks_recipient_when_the_message_fits(limited):
    sender, recipient = limited
    Recipient.objects.create(mailbox_id="X26ABC2", accepts_chunked=False)
    message = queue(sender, CSV)
    assert message.chunking_allowed is False
    assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    assert payload_bytes(_received(recipient, message)) == CSV


def test_it_refuses_a_chunked_message_on_a_workflow_marked_without_chunks(limited):
    sender, _ = limited
    Workflow.objects.filter(mailbox=sender, direction="send").update(accepts_chunked=False)
    with pytest.raises(SendRejected, match="recipients on TEST_WORKFLOW do not accept chunked"):
        queue(sender, os.urandom(2 * LIMIT))
    assert not Message.objects.exists()


def test_the_worker_fails_a_message_that_no_longer_fits_without_sending_anything(limited, sandbox):
    """Queued whole to a no-chunks recipient, then the mailbox's limit was lowered."""
    sender, recipient = limited
    Recipient.objects.create(mailbox_id="X26ABC2", accepts_chunked=False)
    data = os.urandom(LIMIT // 2)
    message = queue(sender, data)
    Message.objects.filter(pk=message.pk).update(max_request_bytes=LIMIT // 4)
    assert outbox.message_send(message_id=message.pk) == Status.FAILED
    message.refresh_from_db()
    assert "does not accept chunked messages" in message.failure_reason
    assert message.mesh_message_id is None
    assert inbox.mailbox_poll(mailbox=recipient).listed == 0
