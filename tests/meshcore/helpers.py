"""Helpers shared by the meshcore tests (no Django anywhere)."""

from __future__ import annotations

import hashlib
import hmac
import random
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


def csv_like(size: int, seed: int = 1) -> bytes:
    """CSV-like text that gzip shrinks about 4:1. A 1 MiB tile is repeated: far beyond gzip's
    32 KiB window, so each repeat compresses like fresh rows, but it costs almost nothing to make."""
    rng = random.Random(seed)
    rows, length = [], 0
    while length < min(size, 1 << 20):
        row = (
            f"{rng.randrange(10**9)},{rng.choice(['SMITH', 'JONES', 'PATEL', 'KHAN'])},"
            f"{rng.choice(['AVA', 'NOAH', 'ISLA'])},19{rng.randrange(30, 99)}-0{rng.randrange(1, 9)}-1"
            f"{rng.randrange(0, 9)},LS{rng.randrange(1, 30)} {rng.randrange(1, 9)}AB,"
            f"{rng.choice(['Discharged to GP', 'Follow-up booked', 'Did not attend'])}\n"
        ).encode()
        rows.append(row)
        length += len(row)
    tile = b"".join(rows)
    return (tile * (size // len(tile) + 1))[:size]
