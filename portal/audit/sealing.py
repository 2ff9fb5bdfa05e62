"""The keys that seal the audit chain, and the chain heads published outside the database.

Records are sealed with HMAC-SHA-256 under a key held outside the database (`AUDIT_CHAIN_KEYS`,
`id:secret` pairs, newest first, from the environment or `AUDIT_CHAIN_KEY_FILE`), so a database
user who rewrites a record cannot compute a hash that verifies. Each record names the key that
sealed it (`key_id`); old keys stay configured to verify the records they sealed. Records sealed
before keys were introduced (plain SHA-256, no `key_id`) still verify, but only before the first
keyed record: a plain record after it was sealed by someone without the key.

The chain head (last seq and hash) is published regularly (`publish_head`, scheduled) to an
append-only file (`AUDIT_HEAD_FILE`) and the logs, where the database's users cannot rewrite it.
Verification checks every published head against the chain, so a history rewritten and re-sealed
even with the key is caught at the first published head after the change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

log = logging.getLogger("portal.audit.heads")


class UnknownChainKey(Exception):
    """A record names a sealing key that AUDIT_CHAIN_KEYS no longer holds."""


def parse_keys(values) -> dict[str, bytes]:
    """`id:secret` strings, newest first, into an ordered {id: key}. Secrets of 32+ characters."""
    keys: dict[str, bytes] = {}
    for position, value in enumerate(values, start=1):
        key_id, _, secret = str(value).strip().partition(":")
        key_id = key_id.strip()
        if not key_id or len(key_id) > 20 or not key_id.replace("-", "").replace("_", "").isalnum():
            raise ImproperlyConfigured(
                f"AUDIT_CHAIN_KEYS: entry {position} must be 'id:secret' with a short id "
                "(letters, digits, - or _)."
            )
        if len(secret.strip()) < 32:
            raise ImproperlyConfigured(
                f"AUDIT_CHAIN_KEYS: the secret of key '{key_id}' must be at least 32 characters "
                "(make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"AUDIT_CHAIN_KEYS: key id '{key_id}' appears twice.")
        keys[key_id] = secret.strip().encode()
    return keys


@lru_cache(maxsize=4)
def _keys(values: tuple[str, ...]) -> dict[str, bytes]:
    return parse_keys(values)


def chain_keys() -> dict[str, bytes]:
    return _keys(tuple(getattr(settings, "AUDIT_CHAIN_KEYS", ()) or ()))


def current_key_id() -> str:
    """The id new records are sealed with ('' when no key is configured: plain SHA-256)."""
    return next(iter(chain_keys()), "")


def seal(canonical: bytes, key_id: str) -> str:
    if not key_id:
        return hashlib.sha256(canonical).hexdigest()
    key = chain_keys().get(key_id)
    if key is None:
        raise UnknownChainKey(key_id)
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


# --- published heads -----------------------------------------------------------------------------


@dataclass
class PublishedHead:
    line: int
    seq: int
    hash: str
    at: str


def head_file() -> Path | None:
    path = getattr(settings, "AUDIT_HEAD_FILE", "")
    return Path(path) if path else None


def _mac(key_id: str, seq: int, record_hash: str, at: str) -> str:
    return seal(f"head:{seq}:{record_hash}:{at}".encode(), key_id)


def publish_head() -> PublishedHead | None:
    """Append the chain head to AUDIT_HEAD_FILE (when it moved) and log it. Returns what was
    published, or None for an empty chain."""
    from .models import ChainHead

    head = ChainHead.objects.filter(pk=1).values_list("last_seq", "last_hash").first()
    if not head or not head[0]:
        return None
    seq, record_hash = head
    at = timezone.now().isoformat()
    key_id = current_key_id()
    entry = {
        "seq": seq,
        "hash": record_hash,
        "at": at,
        "key_id": key_id,
        "mac": _mac(key_id, seq, record_hash, at),
    }
    log.info("audit chain head #%s %s (published %s)", seq, record_hash, at)
    path = head_file()
    if path is None:
        return PublishedHead(0, seq, record_hash, at)
    last = read_heads()[-1:] if path.exists() else []
    if last and last[0].seq == seq and last[0].hash == record_hash:
        return last[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: every write lands at the end, whatever else has the file open. The file can be
    # made append-only (chattr +a) or shipped to storage the database's users cannot reach.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return PublishedHead(0, seq, record_hash, at)


class HeadFileDamaged(Exception):
    pass


def read_heads() -> list[PublishedHead]:
    """Every head published to AUDIT_HEAD_FILE, oldest first; a line that is not one NeoMesh
    wrote (bad JSON, or a MAC that does not verify) raises HeadFileDamaged naming it."""
    path = head_file()
    if path is None or not path.exists():
        return []
    heads = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
                seq, record_hash, at = int(entry["seq"]), str(entry["hash"]), str(entry["at"])
                key_id = str(entry.get("key_id", ""))
                expected = _mac(key_id, seq, record_hash, at)
            except UnknownChainKey as exc:
                raise HeadFileDamaged(
                    f"line {number} of {path} is sealed with key '{exc}', which AUDIT_CHAIN_KEYS "
                    "no longer holds"
                ) from None
            except (ValueError, KeyError, TypeError):
                raise HeadFileDamaged(f"line {number} of {path} is not a published head") from None
            if key_id and not hmac.compare_digest(expected, str(entry.get("mac", ""))):
                raise HeadFileDamaged(f"line {number} of {path} was not written by NeoMesh")
            heads.append(PublishedHead(number, seq, record_hash, at))
    return heads
