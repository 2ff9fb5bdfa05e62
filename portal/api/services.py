"""API tokens: create, expire, revoke, authenticate; the audit record of every call made with one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.audit.services import Actor, record

from .models import TOKEN_PREFIX, WORKFLOW_PATTERN_RE, ApiGrant, ApiToken, Scope, hash_secret


class TokenRefused(Exception):
    """A presented token cannot be used; the message says why, in plain English."""


@dataclass
class GrantSpec:
    """What one scope of a new token may reach."""

    scope: str
    mailboxes: list = field(default_factory=list)
    workflow_patterns: list[str] = field(default_factory=list)


def token_actor(token: ApiToken, ip: str | None = None) -> Actor:
    """Who an API call is made by, for the audit trail: the token, from an address."""
    return Actor.token(label=f"API token {token}", ip=ip, token_id=token.pk)


@transaction.atomic
def token_create(
    *,
    name: str,
    owner,
    grants: list[GrantSpec],
    expires_at: datetime,
    rate_per_minute: int = 600,
    created_by=None,
    actor: Actor | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret. The secret is returned once here and never stored."""
    if expires_at <= timezone.now():
        raise ValueError("The expiry must be in the future.")
    if not grants:
        raise ValueError("A token needs at least one scope.")
    key_id, secret, full = ApiToken.new_secret()
    token = ApiToken.objects.create(
        name=name,
        owner=owner,
        key_id=key_id,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
        rate_per_minute=rate_per_minute,
        created_by=created_by,
    )
    for spec in grants:
        if spec.scope not in Scope.values:
            raise ValueError(f"Unknown scope {spec.scope}: use one of {', '.join(Scope.values)}.")
        bad = [p for p in spec.workflow_patterns if not WORKFLOW_PATTERN_RE.match(p)]
        if bad:
            raise ValueError(
                f"Not a workflow pattern: {', '.join(bad)} (ids, or prefixes ending in *)."
            )
        grant = ApiGrant.objects.create(
            token=token, scope=spec.scope, workflow_patterns="\n".join(spec.workflow_patterns)
        )
        grant.mailboxes.set(spec.mailboxes)
    _audit(actor, "api.token_created", token, describe(token))
    return token, full


def describe(token: ApiToken) -> str:
    parts = []
    for grant in token.grants.all():
        boxes = ",".join(sorted(m.mailbox_id for m in grant.mailboxes.all())) or "no mailbox"
        patterns = f" workflows {','.join(grant.patterns())}" if grant.patterns() else ""
        parts.append(f"{grant.scope} on {boxes}{patterns}")
    return f"owner {token.owner}, expires {token.expires_at:%Y-%m-%d %H:%M}; " + "; ".join(parts)


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor | None = None) -> ApiToken:
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        _audit(actor, "api.token_revoked", token, "")
    return token


@transaction.atomic
def token_expire(*, token: ApiToken, actor: Actor | None = None) -> ApiToken:
    """Ends the token now (it stays listed as expired)."""
    now = timezone.now()
    if token.expires_at > now:
        ApiToken.objects.filter(pk=token.pk).update(expires_at=now)
        token.refresh_from_db()
        _audit(actor, "api.token_expired", token, "")
    return token


def _audit(actor: Actor | None, action: str, token: ApiToken, detail: str) -> None:
    """`actor` is who acts (a person in the portal); without one, the command line."""
    record(actor=actor or Actor.command(), action=action, obj=token, detail=detail)


def token_authenticate(*, presented: str, ip: str | None = None) -> ApiToken:
    """The usable token for a presented `nmk_<key id>_<secret>`, or TokenRefused saying why."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not key_id or not secret:
        raise TokenRefused(
            "This is not a NeoMesh API token: send `Authorization: Bearer nmk_...` with the token "
            "shown when it was created."
        )
    token = (
        ApiToken.objects.select_related("owner")
        .prefetch_related("grants__mailboxes")
        .filter(key_id=key_id)
        .first()
    )
    # Compared even when no row matched, so the answer takes as long either way.
    if (
        not (ApiToken(secret_hash="0" * 64) if token is None else token).matches(secret)
        or not token
    ):
        raise TokenRefused(
            "This token is not valid: check it was copied whole, or ask for a new one."
        )
    now = timezone.now()
    if token.revoked_at:
        raise TokenRefused(
            f"This token was revoked on {token.revoked_at:%Y-%m-%d}: ask an administrator for a new one."
        )
    if token.expires_at <= now:
        raise TokenRefused(
            f"This token expired on {token.expires_at:%Y-%m-%d}: ask an administrator for a new one."
        )
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
    return token
