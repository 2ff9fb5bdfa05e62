"""Encryption of secrets at rest (mailbox passwords, shared keys, private keys).

Keys come from `settings.FIELD_ENCRYPTION_KEYS`, newest first. MultiFernet encrypts with the first key
and decrypts with any, so a key is rotated by putting a new key first, running
`manage.py rotate_encryption_keys`, and then removing the old key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: bytes) -> str:
    return fernet().encrypt(value).decode("ascii")


def decrypt(token: str) -> bytes:
    try:
        return fernet().decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: is FIELD_ENCRYPTION_KEYS missing the key it was "
            "encrypted with?"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key."""
    return fernet().rotate(token.encode("ascii")).decode("ascii")
