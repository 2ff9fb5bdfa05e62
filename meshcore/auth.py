"""The NHSMESH Authorization header.

``NHSMESH {MAILBOX}:{NONCE}:{COUNT}:{TIMESTAMP}:{HMAC}``, where HMAC is lower-case hex
HMAC-SHA256 keyed with the environment's shared secret over
``{MAILBOX}:{NONCE}:{COUNT}:{PASSWORD}:{TIMESTAMP}`` and TIMESTAMP is UTC ``yyyyMMddHHmm``.

The live service accepts each token once, so the client asks for a new one for every HTTP
attempt, retries included: each gets a fresh random nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

SCHEME = "NHSMESH"


def utc_timestamp(now: datetime | None = None) -> str:
    """MESH token time: UTC, minute precision, ``yyyyMMddHHmm``."""
    now = now or datetime.now(UTC)
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return now.strftime("%Y%m%d%H%M")


def token_hmac(
    shared_key: bytes, mailbox_id: str, nonce: str, nonce_count: int, password: str, timestamp: str
) -> str:
    message = f"{mailbox_id}:{nonce}:{nonce_count}:{password}:{timestamp}"
    return hmac.new(shared_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def build_token(
    mailbox_id: str,
    password: str,
    shared_key: bytes,
    *,
    nonce: str,
    nonce_count: int = 0,
    timestamp: str | None = None,
) -> str:
    """One complete Authorization header value."""
    timestamp = timestamp or utc_timestamp()
    digest = token_hmac(shared_key, mailbox_id, nonce, nonce_count, password, timestamp)
    return f"{SCHEME} {mailbox_id}:{nonce}:{nonce_count}:{timestamp}:{digest}"


class TokenFactory:
    """Makes a brand-new token on every call (new uuid4 nonce, count 0, current UTC minute)."""

    def __init__(
        self,
        mailbox_id: str,
        password: str,
        shared_key: bytes,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._mailbox_id = mailbox_id
        self._password = password
        self._shared_key = shared_key
        self._clock = clock or (lambda: datetime.now(UTC))

    def __call__(self) -> str:
        return build_token(
            self._mailbox_id,
            self._password,
            self._shared_key,
            nonce=str(uuid.uuid4()),
            timestamp=utc_timestamp(self._clock()),
        )

    def __repr__(self) -> str:
        # Never show the password or key, even in a debugger or a log line.
        return f"TokenFactory(mailbox_id={self._mailbox_id!r})"
