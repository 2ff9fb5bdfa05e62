"""The event list: commit order by `seq`, `?after=`, scope by mailbox and workflow, long-poll."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from portal.api.models import Scope
from portal.events.services import event_emit

from .conftest import Api, make_token

pytestmark = [pytest.mark.django_db(transaction=True)]


def _emit(mailbox, kind="message.received", workflow="TEST_WORKFLOW", message_id=None):
    with transaction.atomic():
        return event_emit(
            kind=kind,
            severity="info",
            summary=f"{kind} on {mailbox.mailbox_id}",
            mailbox_id=mailbox.pk,
            workflow=workflow,
            message_id=message_id,
        )


def test_it_lists_events_after_a_cursor_for_the_tokens_mailboxes(api, sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    _emit(recipient, message_id=41)
    _emit(sender, kind="message.acknowledged")
    page = api.get("/events/").json()
    kinds = [e["kind"] for e in page["results"]]
    assert kinds == ["message.received", "message.acknowledged"]
    assert page["results"][0]["mailbox"] == "X26ABC2"
    assert page["results"][0]["message_url"].endswith("/api/v1/messages/41/")
    third = _emit(recipient, kind="message.ndr")
    following = api.get(page["next"]).json()
    third.refresh_from_db()
    assert [e["seq"] for e in following["results"]] == [third.seq]
    assert api.get("/events/", params={"after": following["after"]}).json()["results"] == []
    assert [
        e["kind"] for e in api.get("/events/", params={"kind": "message.ndr"}).json()["results"]
    ] == ["message.ndr"]


def test_it_shows_a_token_only_its_mailboxes_and_workflows(live_server, owner, sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    _, secret = make_token(owner, [recipient], scopes=[Scope.EVENTS_READ], patterns=["LAB_*"])
    _emit(sender, workflow="LAB_1")
    _emit(recipient, workflow="OTHER")
    wanted = _emit(recipient, workflow="LAB_2")
    results = Api(live_server.url, secret).get("/events/").json()["results"]
    assert [e["summary"] for e in results] == [wanted.summary]


def test_it_needs_the_events_scope_and_a_number_for_after(live_server, owner, sandbox_mailboxes):
    _, secret = make_token(owner, sandbox_mailboxes, scopes=[Scope.MESSAGES_READ])
    api = Api(live_server.url, secret)
    assert api.get("/events/").status_code == 403
    _, secret = make_token(owner, sandbox_mailboxes, scopes=[Scope.EVENTS_READ], name="e")
    api = Api(live_server.url, secret)
    for params, field in (
        ({"after": "abc"}, "after"),
        ({"wait": 99}, "wait"),
        ({"kind": "nope"}, "kind"),
    ):
        answer = api.get("/events/", params=params)
        assert answer.status_code == 400 and field in answer.json()["errors"]


def test_it_holds_an_empty_answer_until_an_event_comes(api, sandbox_mailboxes):
    _, recipient = sandbox_mailboxes
    assert api.get("/events/", params={"wait": 0}).json()["results"] == []
    later = threading.Timer(1.0, lambda: _emit(recipient, kind="message.received"))
    later.start()
    try:
        answer = api.get("/events/", params={"wait": 20})
    finally:
        later.join()
    assert [e["kind"] for e in answer.json()["results"]] == ["message.received"]
