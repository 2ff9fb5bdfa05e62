"""The README's curl walk-through and Python example, run as written against a live server."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from portal.accounts.roles import MAILBOX_ADMIN
from portal.messaging import inbox, outbox
from portal.messaging.models import Message
from tests.factories import make_user

from .conftest import Api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]
README = Path(__file__).resolve().parents[2] / "portal" / "api" / "README.md"


def _block(tag: str) -> str:
    match = re.search(rf"```{tag}\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no {tag} block"
    return match.group(1)


def _sh(tag: str, env: dict, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block(f"sh {tag}")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _create_token() -> str:
    command = _block("sh walkthrough-token").replace("\\\n", " ")
    args = shlex.split(command)
    assert args[:2] == [".venv/bin/python", "manage.py"]
    out = io.StringIO()
    call_command(*args[2:], stdout=out)
    return re.search(r"^nmk_\S+$", out.getvalue(), re.M).group()


def _deliver(sender, recipient) -> None:
    """What the workers do: send what is queued, then poll the recipient's inbox."""
    for message in Message.objects.outbound().filter(status="queued"):
        assert outbox.message_send(message_id=message.pk) == "accepted"
    inbox.mailbox_poll(mailbox=recipient)


def test_it_runs_the_curl_walkthrough_and_the_python_example(
    live_server, sandbox_mailboxes, tmp_path, monkeypatch
):
    sender, recipient = sandbox_mailboxes
    make_user(MAILBOX_ADMIN, username="alice")
    secret = _create_token()
    env = {"PATH": "/usr/bin:/bin", "NEOMESH_URL": live_server.url, "NEOMESH_TOKEN": secret}

    sent = json.loads(_sh("walkthrough-send", env, tmp_path))
    assert sent["status"] == "queued" and sent["filename"] == "results.csv"
    again = json.loads(_sh("walkthrough-send", env, tmp_path))
    assert again["id"] == sent["id"] and Message.objects.count() == 1
    _deliver(sender, recipient)

    [event] = json.loads(_sh("walkthrough-wait", env, tmp_path))["results"]
    assert (event["kind"], event["mailbox"]) == ("message.received", "X26ABC2")
    env["MESSAGE_ID"] = str(event["message_id"])
    assert "sha256 matches" in _sh("walkthrough-collect", env, tmp_path)
    assert (tmp_path / "received.csv").read_bytes() == (tmp_path / "results.csv").read_bytes()
    confirmed = json.loads(_sh("walkthrough-confirm", env, tmp_path))
    assert confirmed["first"] is True and confirmed["message"]["payload_confirmed_at"]

    api = Api(live_server.url, secret)
    second = api.post(
        "/messages/",
        data=b"second file",
        params={
            "mailbox": "X26ABC1",
            "recipient": "X26ABC2",
            "workflow_id": "TEST_WORKFLOW",
            "filename": "second.txt",
        },
    )
    assert second.status_code == 202
    _deliver(sender, recipient)
    done = subprocess.run(
        [sys.executable, "-c", _block("python walkthrough-python")],
        env={**env, "PYTHONPATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    latest = Message.objects.inbound().get(filename="second.txt")
    assert done.stdout.strip() == f"collected message-{latest.pk}.dat (second.txt, 11 bytes)"
    assert (tmp_path / f"message-{latest.pk}.dat").read_bytes() == b"second file"
    assert not Message.objects.inbound().filter(payload_confirmed_at__isnull=True).exists()
