"""Helpers shared by the meshcore tests (no Django anywhere)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

from meshcore import MeshClient
from tests.sandbox import PASSWORD, SHARED_KEY

BASE = "https://mesh.example.test"
MAILBOX = "X26ABC1"
MiB = 1024 * 1024


class Sleeps(list):
    """An injectable sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def unit_client(**kwargs) -> MeshClient:
    """A client for `responses`-mocked tests: fake host, no real sleeping."""
    kwargs.setdefault("sleep", Sleeps())
    return MeshClient(BASE, MAILBOX, PASSWORD, SHARED_KEY, **kwargs)


def mailbox_url(*parts: str) -> str:
    return "/".join([f"{BASE}/messageexchange/{MAILBOX}", *parts])


def check_token(header: str, mailbox: str = MAILBOX, password: str = PASSWORD) -> tuple[str, str]:
    """Re-derive an NHSMESH token independently; returns (nonce, count). Fails on any flaw."""
    scheme, _, rest = header.partition(" ")
    assert scheme == "NHSMESH"
    token_mailbox, nonce, count, timestamp, digest = rest.split(":")
    assert token_mailbox == mailbox
    uuid.UUID(nonce)
    assert count.isdigit()
    assert len(timestamp) == 12 and timestamp.isdigit()
    stamped = datetime.strptime(timestamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamped) < timedelta(minutes=2), "timestamp must be current UTC"
    message = f"{token_mailbox}:{nonce}:{count}:{password}:{timestamp}".encode()
    expected = hmac.new(SHARED_KEY.encode(), message, hashlib.sha256).hexdigest()
    assert digest == expected
    return nonce, count
