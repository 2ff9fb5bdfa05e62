"""The message timeline says each thing once, and names workers as people read them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.services import Actor, record
from portal.messaging.models import Direction, MessageEvent
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

WORKER = "vm:30377:140053271669632"


def test_it_says_each_event_once_and_names_the_worker_on_its_host(client, auditor_user):
    message = make_message(
        make_mailbox("X26ABC1"), payload=None, direction=Direction.OUTBOUND, chunks_total=3
    )
    Kind = MessageEvent.Kind
    message.add_event(Kind.CLAIMED, f"Attempt 1 by {WORKER}")
    for chunk in (1, 2, 3):
        message.add_event(Kind.CHUNK_SENT, f"Chunk {chunk} of 3 uploaded", chunk=chunk)
    message.add_event(Kind.RETRY, f"The worker {WORKER} stopped; resuming after chunk 2.")
    message.add_event(Kind.ACKNOWLEDGED, "Acknowledged to MESH")
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    timeline = html[html.index('id="timeline"') :]
    assert "Chunk uploaded" not in timeline
    assert timeline.count("Chunk 1 of 3 uploaded") == 1
    assert "<strong>Chunk 3 of 3 uploaded</strong>" in timeline
    assert "<strong>Acknowledged</strong> to MESH" in timeline
    assert "Acknowledged to MESH</div>" not in timeline
    # The worker's full id stays in a title (and in the stored event); the text says where it ran.
    assert f'Attempt 1 by <span title="{WORKER}">worker on vm</span>' in timeline
    assert f'The <span title="worker {WORKER}">worker on vm</span> stopped' in timeline
    assert (
        timeline.replace(f'title="{WORKER}"', "")
        .replace(f'title="worker {WORKER}"', "")
        .count(WORKER)
        == 0
    )


def test_the_audit_trail_names_workers_on_their_host(client, auditor_user):
    record(actor=Actor(kind="worker", label="worker vm:30377"), action="mailbox.poll")
    client.force_login(auditor_user)
    html = client.get(reverse("audit:trail")).content.decode()
    assert '<span title="worker vm:30377">worker on vm</span>' in html


def test_it_leaves_addresses_and_times_alone():
    from portal.lib.templatetags.neomesh import workers

    text = "Connection refused by localhost:8700 at 12:30:05"
    assert workers(text) == text
    assert workers("<b>") == "&lt;b&gt;"
