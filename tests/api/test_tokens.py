"""Token management: portal pages and the api_token command; the secret shown once, hash only."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from portal.api.models import ApiToken
from portal.api.services import TokenRefused, token_authenticate
from portal.audit.models import AuditRecord
from tests.factories import make_mailbox

from .conftest import make_token

SECRET = re.compile(r"nmk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def mailboxes(db):
    return make_mailbox("X26ABC1"), make_mailbox("X26ABC2")


def _form(**overrides):
    data = {
        "name": "Data lake",
        "expires_on": (timezone.localdate() + timedelta(30)).isoformat(),
        "rate_per_minute": "600",
        "messages_read_mailboxes": ["X26ABC2"],
        "messages_read_workflows": "TEST_*",
        "payloads_read_mailboxes": ["X26ABC2"],
    }
    return {**data, **overrides}


def test_it_creates_a_token_in_the_portal_and_shows_the_secret_once(client, admin_user, mailboxes):
    client.force_login(admin_user)
    assert client.get("/api-tokens/new/").status_code == 200
    page = client.post("/api-tokens/new/", _form(owner=admin_user.pk))
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    secret = SECRET.search(page.content.decode()).group()
    token = ApiToken.objects.get()
    assert token.secret_hash == hashlib.sha256(secret.split("_", 2)[2].encode()).hexdigest()
    assert secret.split("_", 2)[2] not in str(AuditRecord.objects.values_list())
    grant = token.grant_for("messages:read")
    assert grant.patterns() == ["TEST_*"] and token.grant_for("messages:send") is None
    listing = client.get("/api-tokens/").content.decode()
    assert "Data lake" in listing and f"nmk_{token.key_id}" in listing and secret not in listing
    assert AuditRecord.objects.filter(action="api.token_created", actor=admin_user).exists()
    assert token_authenticate(presented=secret) == token


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"messages_read_mailboxes": [], "payloads_read_mailboxes": []}, "at least one scope"),
        ({"messages_read_workflows": "BAD FLOW"}, "Not a workflow pattern"),
        ({"expires_on": "2020-01-01"}, "after today"),
    ],
)
def test_it_refuses_a_bad_token_form(client, admin_user, mailboxes, overrides, message):
    client.force_login(admin_user)
    page = client.post("/api-tokens/new/", _form(owner=admin_user.pk, **overrides))
    assert message in page.content.decode() and not ApiToken.objects.exists()


def test_it_expires_and_revokes_from_the_portal(client, admin_user, mailboxes):
    first, secret = make_token(admin_user, mailboxes)
    second, other = make_token(admin_user, mailboxes, name="second")
    client.force_login(admin_user)
    assert client.post(f"/api-tokens/{first.pk}/expire/").status_code == 302
    assert client.post(f"/api-tokens/{second.pk}/revoke/").status_code == 302
    for presented, word in ((secret, "expired"), (other, "revoked")):
        with pytest.raises(TokenRefused, match=word):
            token_authenticate(presented=presented)
    actions = set(AuditRecord.objects.filter(actor=admin_user).values_list("action", flat=True))
    assert {"api.token_expired", "api.token_revoked"} <= actions


@pytest.mark.parametrize("persona", ["auditor_user", "lead_user", "outsider_user"])
def test_it_keeps_token_pages_to_admins(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/api-tokens/").status_code == 403
    assert client.post("/api-tokens/new/", {}).status_code == 403


def test_it_manages_tokens_from_the_command_line(mailboxes, admin_user, capsys):
    call_command(
        "api_token",
        "create",
        "--name",
        "Lake",
        "--owner",
        admin_user.username,
        "--scope",
        "messages:send=X26ABC1",
        "--scope",
        "messages:read=X26ABC1,X26ABC2:T_*",
        "--days",
        "10",
    )
    out = capsys.readouterr().out
    secret = SECRET.search(out).group()
    token = token_authenticate(presented=secret)
    assert token.grant_for("messages:read").patterns() == ["T_*"]
    call_command("api_token", "list")
    listed = capsys.readouterr().out
    assert token.key_id in listed and "active" in listed and secret not in listed
    call_command("api_token", "revoke", token.key_id)
    with pytest.raises(TokenRefused):
        token_authenticate(presented=secret)
    assert AuditRecord.objects.filter(action="api.token_revoked").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--scope", "messages:write=X26ABC1"], "expected"),
        (["--scope", "messages:send=X26NOPE"], "no mailbox X26NOPE"),
        (["--owner", "nobody"], "No user"),
    ],
)
def test_it_explains_a_bad_command(mailboxes, admin_user, args, message):
    base = {"--name": "Lake", "--owner": admin_user.username, "--scope": "messages:send=X26ABC1"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError, match=message):
        call_command("api_token", "create", *[x for pair in base.items() for x in pair])
