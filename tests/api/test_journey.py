"""A program sends, follows, collects and confirms over real HTTP, against the real mesh-sandbox."""

from __future__ import annotations

import hashlib
import os

import pytest

from portal.audit.models import AuditRecord
from portal.messaging import inbox, outbox
from portal.messaging.models import Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]


def test_it_sends_follows_collects_and_confirms(api, sandbox_mailboxes, token_pair):
    sender, recipient = sandbox_mailboxes
    data = os.urandom(300_000)
    sent = api.post(
        "/messages/",
        data=data,
        params={
            "mailbox": "X26ABC1",
            "recipient": "X26ABC2",
            "workflow_id": "TEST_WORKFLOW",
            "filename": "results.bin",
            "subject": "Results",
            "local_id": "run-1",
        },
        headers={"Content-Type": "application/octet-stream", "Idempotency-Key": "k-1"},
    )
    assert sent.status_code == 202, sent.text
    body = sent.json()
    assert sent.headers["Location"] == body["url"]
    assert (body["status"], body["size_bytes"]) == ("queued", len(data))
    assert body["payload_sha256"] == hashlib.sha256(data).hexdigest()

    repeat = api.post(
        "/messages/",
        data=data,
        params={"mailbox": "X26ABC1", "recipient": "X26ABC2", "workflow_id": "TEST_WORKFLOW"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert repeat.status_code == 202 and repeat.json()["id"] == body["id"]
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1

    cursor = api.get("/events/").json()["after"]
    assert outbox.message_send(message_id=body["id"]) == "accepted"
    inbox.mailbox_poll(mailbox=recipient)

    # The program follows the event list (long-poll) until the recipient's poller has stored it.
    arrived = api.get("/events/", params={"after": cursor, "kind": "message.received", "wait": 10})
    [event] = arrived.json()["results"]
    assert event["mailbox"] == "X26ABC2" and event["workflow"] == "TEST_WORKFLOW"
    received = api.get(event["message_url"]).json()
    listed = api.get("/messages/", params={"mailbox": "X26ABC2", "direction": "in"}).json()
    assert [m["id"] for m in listed["results"]] == [received["id"]]
    assert (received["subject"], received["local_id"]) == ("Results", "run-1")

    whole = api.get(received["payload_url"])
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["X-Payload-SHA256"] == hashlib.sha256(data).hexdigest()
    part = api.get(received["payload_url"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"

    confirmed = api.post(
        f"/messages/{received['id']}/confirm/", json={"sha256": hashlib.sha256(data).hexdigest()}
    )
    assert confirmed.status_code == 200 and confirmed.json()["first"] is True
    timeline = api.get(f"/messages/{received['id']}/").json()["timeline"]
    assert timeline[-1]["kind"] == "confirmed"

    token = token_pair[0]
    labels = set(
        AuditRecord.objects.filter(actor_label=f"API token {token}").values_list(
            "action", flat=True
        )
    )
    assert {
        "api.call",
        "message.queued",
        "message.payload_downloaded",
        "message.payload_confirmed",
    } <= labels
