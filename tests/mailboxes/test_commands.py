"""Mailbox commands: handshake (non-zero exit on failure) and the idempotent demo seed."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, ManagementUtility, call_command

from portal.mailboxes.models import Mailbox, Organisation, Workflow

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.sandbox
def test_mesh_handshake_succeeds_against_the_sandbox(sandbox_mailboxes):
    assert "Handshake with X26ABC1 succeeded in" in run("mesh_handshake", "x26abc1")
    assert Mailbox.objects.get(mailbox_id="X26ABC1").last_handshake_ok is True


@pytest.mark.sandbox
def test_mesh_handshake_exits_non_zero_with_a_wrong_password(sandbox_mailboxes):
    Mailbox.objects.filter(mailbox_id="X26ABC1").update(password="not-the-password")
    with pytest.raises(CommandError, match="Handshake with X26ABC1 failed: .*HTTP 403"):
        run("mesh_handshake", "X26ABC1")
    mailbox = Mailbox.objects.get(mailbox_id="X26ABC1")
    assert mailbox.last_handshake_ok is False and "Handshake failed" in mailbox.last_error
    with pytest.raises(SystemExit) as stopped:
        ManagementUtility(["manage.py", "mesh_handshake", "X26ABC1"]).execute()
    assert stopped.value.code == 1


def test_mesh_handshake_refuses_an_unknown_mailbox():
    with pytest.raises(CommandError, match="No mailbox 'X26NOPE1'"):
        run("mesh_handshake", "X26NOPE1")


def snapshot() -> dict:
    return {
        "organisations": list(Organisation.objects.values_list("ods_code", "name")),
        "mailboxes": list(
            Mailbox.objects.order_by("mailbox_id").values_list("mailbox_id", "password")
        ),
        "workflows": sorted(
            Workflow.objects.values_list("mailbox__mailbox_id", "workflow_id", "direction")
        ),
        "users": sorted(
            (u.username, u.is_superuser, tuple(g.name for g in u.groups.all()), u.password)
            for u in User.objects.prefetch_related("groups")
        ),
    }


def test_seed_demo_is_idempotent(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    run("seed_demo")
    first = snapshot()
    assert first["organisations"] == [("X26", "Demo Org")]
    assert [m for m, _ in first["mailboxes"]] == ["X26ABC1", "X26ABC2", "X26ABC3"]
    assert ("X26ABC1", "TEST_WORKFLOW", "send") in first["workflows"]
    assert {"admin", "mailbox-admin", "onboarding-lead", "auditor"} <= {
        u[0] for u in first["users"]
    }
    run("seed_demo")
    assert snapshot() == first


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="development only"):
        run("seed_demo")
    assert not Mailbox.objects.exists()
