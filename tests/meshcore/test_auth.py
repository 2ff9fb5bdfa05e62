"""The NHSMESH token: format, HMAC, UTC minute, a new nonce every time."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

from meshcore.auth import TokenFactory, build_token, utc_timestamp
from tests.meshcore.helpers import check_token


def test_it_matches_the_published_algorithm():
    token = build_token(
        "X26ABC1", "password", b"TestKey", nonce="n-1", nonce_count=3, timestamp="202611231015"
    )
    expected = hmac.new(
        b"TestKey", b"X26ABC1:n-1:3:password:202611231015", hashlib.sha256
    ).hexdigest()
    assert token == f"NHSMESH X26ABC1:n-1:3:202611231015:{expected}"


def test_it_stamps_utc_minutes_even_from_a_local_clock():
    bst = timezone(timedelta(hours=1))
    assert utc_timestamp(datetime(2026, 7, 1, 0, 30, 59, tzinfo=bst)) == "202606302330"
    assert len(utc_timestamp()) == 12


def test_it_makes_a_new_valid_token_every_call():
    tokens = TokenFactory("X26ABC1", "password", b"TestKey")
    headers = [tokens() for _ in range(50)]
    assert len(set(headers)) == 50
    assert len({check_token(header)[0] for header in headers}) == 50


def test_it_uses_the_injected_clock():
    fixed = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    header = TokenFactory("X26ABC1", "password", b"TestKey", clock=lambda: fixed)()
    assert header.split(":")[3] == "203001020304"


def test_it_never_shows_secrets_in_its_repr():
    assert "password" not in repr(TokenFactory("X26ABC1", "password", b"TestKey"))
    assert "TestKey" not in repr(TokenFactory("X26ABC1", "password", b"TestKey"))
