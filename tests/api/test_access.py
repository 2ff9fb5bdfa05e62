"""Who may call what: scopes, mailboxes, workflows, expiry, revocation, sessions and CSRF, rates."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from portal.api.models import ApiToken, Scope
from portal.api.services import token_revoke
from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.messaging.models import Message
from tests.factories import make_mailbox

from .conftest import Api, make_token

pytestmark = [pytest.mark.django_db(transaction=True)]
SEND = {"mailbox": "X26ABC1", "recipient": "X26ABC2", "workflow_id": "TEST_WORKFLOW"}


def _message(mailbox, workflow="TEST_WORKFLOW"):
    return Message.objects.create(
        mailbox=mailbox,
        direction="in",
        workflow_id=workflow,
        recipient=mailbox.mailbox_id,
        status="acknowledged",
    )


def test_it_refuses_a_call_without_a_scope(live_server, owner, sandbox_mailboxes):
    _, secret = make_token(owner, sandbox_mailboxes, scopes=[Scope.MESSAGES_READ])
    answer = Api(live_server.url, secret).post("/messages/", data=b"x", params=SEND)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["detail"] == "This token does not have the messages:send scope."
    assert not Message.objects.exists()


def test_it_refuses_another_mailbox(live_server, owner, sandbox_mailboxes):
    sender, recipient = sandbox_mailboxes
    _, secret = make_token(owner, [recipient])
    api = Api(live_server.url, secret)
    answer = api.post("/messages/", data=b"x", params=SEND)
    assert answer.status_code == 403 and "mailbox X26ABC1" in answer.json()["detail"]
    # A message of a mailbox out of the token's reach (its grants) reads as absent, not refused.
    assert api.get(f"/messages/{_message(sender).pk}/").status_code == 404
    assert api.get("/messages/", params={"mailbox": "X26ABC1"}).status_code == 403
    mine = _message(recipient)
    assert [m["id"] for m in api.get("/messages/").json()["results"]] == [mine.pk]


def test_it_limits_reads_to_the_workflow_patterns(live_server, owner, sandbox_mailboxes):
    _, recipient = sandbox_mailboxes
    _, secret = make_token(owner, [recipient], patterns=["PATH_*", "EXACT"])
    api = Api(live_server.url, secret)
    wanted = [_message(recipient, w) for w in ("PATH_A", "EXACT")]
    other = _message(recipient, "EXACTLY")
    ids = {m["id"] for m in api.get("/messages/").json()["results"]}
    assert ids == {m.pk for m in wanted}
    assert api.get(f"/messages/{other.pk}/").status_code == 403
    assert api.get(f"/messages/{other.pk}/payload/").status_code == 403


@pytest.mark.parametrize("state", ["expired", "revoked", "wrong secret", "not ours"])
def test_it_refuses_a_token_that_cannot_be_used(live_server, owner, sandbox_mailboxes, state):
    token, secret = make_token(owner, sandbox_mailboxes)
    if state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    elif state == "revoked":
        token_revoke(token=token, actor=Actor.system("test setup"))
    elif state == "wrong secret":
        secret = secret[:-4] + "AAAA"
    else:
        secret = "ghp_something_else"
    answer = Api(live_server.url, secret).get("/messages/")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    word = {
        "expired": "expired",
        "revoked": "revoked",
        "wrong secret": "not valid",
        "not ours": "not a NeoMesh API token",
    }[state]
    assert word in answer.json()["detail"]


def test_it_records_last_use_and_audits_every_call(api, token_pair):
    api.get("/messages/")
    api.get("/messages/999999/")
    token = ApiToken.objects.get(pk=token_pair[0].pk)
    assert token.last_used_at and token.last_used_ip == "127.0.0.1"
    calls = AuditRecord.objects.filter(action="api.call", actor_label=f"API token {token}")
    assert sorted(calls.values_list("detail", flat=True)) == [
        "GET /api/v1/messages/ -> 200",
        "GET /api/v1/messages/999999/ -> 404",
    ]
    assert set(calls.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_it_audits_a_refused_call_too(live_server, db):
    Api(live_server.url, "nmk_abc_def").get("/messages/")
    record = AuditRecord.objects.get(action="api.call")
    assert record.actor_label == "API caller without a valid token"
    assert record.detail == "GET /api/v1/messages/ -> 401"


def test_it_never_accepts_a_token_on_the_html_pages(live_server, api):
    page = api.http.get(live_server.url + "/messages/", allow_redirects=False, timeout=30)
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
    tokens = api.http.get(live_server.url + "/api-tokens/", allow_redirects=False, timeout=30)
    assert tokens.status_code == 302


def _signed_in(live_server, client, user) -> requests.Session:
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def test_it_takes_a_session_only_with_csrf(live_server, client, admin_user, sandbox_mailboxes):
    session = _signed_in(live_server, client, admin_user)
    base = live_server.url + "/api/v1"
    assert session.get(base + "/messages/", timeout=30).status_code == 200
    refused = session.post(base + "/messages/", data=b"x", params=SEND, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Message.objects.exists()
    page = session.get(live_server.url + "/messages/send/", timeout=30)
    csrf = session.cookies.get("csrftoken")
    assert page.status_code == 200 and csrf
    sent = session.post(
        base + "/messages/",
        data=b"hello",
        params=SEND,
        timeout=30,
        headers={"X-CSRFToken": csrf, "Referer": live_server.url + "/"},
    )
    assert sent.status_code == 202, sent.text
    record = AuditRecord.objects.get(action="message.queued")
    assert record.actor == admin_user


def test_it_refuses_a_session_without_the_permission(live_server, client, auditor_user, db):
    make_mailbox("X26ABC1"), make_mailbox("X26ABC2")
    session = _signed_in(live_server, client, auditor_user)
    assert session.get(live_server.url + "/api/v1/messages/", timeout=30).status_code == 200
    page = session.get(live_server.url + "/api/v1/messages/1/payload/", timeout=30)
    assert page.status_code in (403, 404)


def test_it_limits_each_tokens_rate(live_server, owner, sandbox_mailboxes):
    token, secret = make_token(owner, sandbox_mailboxes, rate_per_minute=3)
    other = Api(live_server.url, make_token(owner, sandbox_mailboxes, name="other")[1])
    api = Api(live_server.url, secret)
    assert [api.get("/messages/").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/messages/")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many calls" in limited.json()["detail"]
    assert other.get("/messages/").status_code == 200
