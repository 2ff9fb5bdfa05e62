"""The API's payload download reads through the payload layer: an altered payload and a purged
one each get a clear problem, never a traceback."""

from __future__ import annotations

import pytest
from django.utils import timezone

from portal.api.downloads import payload_response
from portal.api.problems import Problem
from portal.lib import payloads
from portal.messaging.models import Message
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def test_an_encrypted_payload_streams_in_plain_and_ranges_work():
    message = make_message(make_mailbox("X26ABC1"), payload=b"0123456789" * 1000)
    response = payload_response(message, "bytes=10-19")
    assert response.status_code == 206 and b"".join(response.streaming_content) == b"0123456789"
    assert (payloads.root() / message.payload.name).read_bytes()[:8] == b"NMESHENC"


def test_an_altered_payload_is_a_clear_problem():
    message = make_message(make_mailbox("X26ABC1"), payload=b"patient data " * 100)
    path = payloads.root() / message.payload.name
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(Problem) as caught:
        payload_response(message, None)
    assert caught.value.status_code == 500 and "altered" in str(caught.value.detail)


def test_a_purged_payload_is_gone_with_the_rule_named():
    message = make_message(make_mailbox("X26ABC1"))
    Message.objects.filter(pk=message.pk).update(
        payload="", payload_purged_at=timezone.now(), payload_purge_rule="GP letters 7d"
    )
    message.refresh_from_db()
    with pytest.raises(Problem) as caught:
        payload_response(message, None)
    assert caught.value.status_code == 410 and "GP letters 7d" in str(caught.value.detail)
