"""Single sign-on with OpenID Connect (authlib): the provider's client, and what its claims decide.

The client is authlib's Django integration: discovery from `OIDC_ISSUER`, authorization code with
PKCE (S256), state and nonce kept in the session, the ID token's signature, issuer, audience, nonce
and expiry checked. `claims_decide` turns the claims into a decision (who, which roles, which
organisations, or a refusal a person can read); `services.sso_signin` applies it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.django_client import OAuth
from django.conf import settings

from .roles import ROLE_PERMISSIONS

EVERY = "*"
_lock = threading.Lock()
_clients: dict[tuple, Any] = {}


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def provider_name() -> str:
    return settings.OIDC_PROVIDER_NAME


def client():
    """The provider's authlib client for the current settings (one per configuration)."""
    key = (
        settings.OIDC_ISSUER,
        settings.OIDC_CLIENT_ID,
        settings.OIDC_CLIENT_SECRET,
        settings.OIDC_SCOPES,
        settings.OIDC_TOKEN_AUTH_METHOD,
        settings.OIDC_TIMEOUT_SECONDS,
    )
    with _lock:
        if key not in _clients:
            oauth = OAuth()
            _clients[key] = oauth.register(
                name="sso",
                client_id=settings.OIDC_CLIENT_ID,
                client_secret=settings.OIDC_CLIENT_SECRET,
                server_metadata_url=f"{settings.OIDC_ISSUER}/.well-known/openid-configuration",
                client_kwargs={
                    "scope": settings.OIDC_SCOPES,
                    "code_challenge_method": "S256",
                    "token_endpoint_auth_method": settings.OIDC_TOKEN_AUTH_METHOD,
                    "default_timeout": settings.OIDC_TIMEOUT_SECONDS,
                },
            )
        return _clients[key]


def metadata() -> dict:
    """The provider's discovery document; its `issuer` must be the one configured (OIDC Discovery
    section 4.3), else a look-alike document could name another issuer's keys."""
    document = client().load_server_metadata()
    if str(document.get("issuer", "")).rstrip("/") != settings.OIDC_ISSUER:
        raise SsoRefused(
            "misconfigured",
            "The identity provider's discovery document names another issuer than OIDC_ISSUER.",
        )
    return document


class SsoRefused(Exception):
    """A sign-in NeoMesh will not complete: `reason` for the audit trail, `message` for the person."""

    def __init__(self, reason: str, message: str, *, username: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.username = username


@dataclass(frozen=True)
class Decision:
    subject: str
    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    organisations: frozenset[str] = field(default_factory=frozenset)  # ODS codes
    every_organisation: bool = False


def claim_values(claims: dict, path: str) -> list[str]:
    """Every string at a dotted `path` of `claims`, lists flattened at each step (bounded)."""
    found: list[Any] = [claims]
    for part in path.split("."):
        step: list[Any] = []
        for value in found:
            items = value if isinstance(value, list) else [value]
            step.extend(
                item[part] for item in items[:1000] if isinstance(item, dict) and part in item
            )
        found = step
    values: list[str] = []
    for value in found:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str | int) and not isinstance(item, bool):
                values.append(str(item)[:500])
    return values[:1000]


def _mapped(values: list[str], mapping: dict[str, str]) -> set[str]:
    return {
        target.strip()
        for value in values
        for target in str(mapping.get(value, "")).split(";")
        if target.strip()
    }


def claims_decide(claims: dict) -> Decision:
    """Who the claims say this is, and the roles and organisations they map to; or SsoRefused."""
    subject = str(claims.get("sub") or "")
    usernames = claim_values(claims, settings.OIDC_USERNAME_CLAIM)
    username = (usernames[0] if usernames else "").strip()[:150]
    if not subject or not username:
        raise SsoRefused(
            "no_username",
            f"Your identity provider did not say who you are (the {settings.OIDC_USERNAME_CLAIM} "
            "claim is missing). Ask your NeoMesh administrator to check the sign-on settings.",
        )
    roles = _mapped(claim_values(claims, settings.OIDC_ROLE_CLAIM), settings.OIDC_ROLE_MAP)
    unknown = roles - set(ROLE_PERMISSIONS)
    if unknown:
        raise SsoRefused(
            "misconfigured",
            "NeoMesh's sign-on settings map to roles that do not exist: "
            f"{', '.join(sorted(unknown))}. Ask your NeoMesh administrator to correct OIDC_ROLE_MAP.",
            username=username,
        )
    if not roles:
        raise SsoRefused(
            "no_role",
            f"You signed in as {username}, but none of your groups gives you a role in NeoMesh. "
            "Ask your NeoMesh administrator for access.",
            username=username,
        )
    org_values = claim_values(claims, settings.OIDC_ORGANISATION_CLAIM)
    if settings.OIDC_ORGANISATION_CLAIM_IS_ODS_CODE:
        organisations = {value.strip().upper() for value in org_values if value.strip()}
    else:
        organisations = _mapped(org_values, settings.OIDC_ORGANISATION_MAP)
    every = EVERY in organisations
    organisations.discard(EVERY)
    if not organisations and not every:
        raise SsoRefused(
            "no_organisation",
            f"You signed in as {username}, but none of your groups names an organisation in "
            "NeoMesh. Ask your NeoMesh administrator for access.",
            username=username,
        )
    first = claim_values(claims, "given_name")
    last = claim_values(claims, "family_name")
    email = claim_values(claims, "email")
    return Decision(
        subject=subject[:255],
        username=username,
        email=(email[0] if email else "")[:254],
        first_name=(first[0] if first else "")[:150],
        last_name=(last[0] if last else "")[:150],
        roles=frozenset(roles),
        organisations=frozenset(organisations),
        every_organisation=every,
    )


def check_settings(app_configs=None, **kwargs) -> list:
    """`manage.py check` (and every start of the web server) names a map to a role that does not
    exist, rather than refusing everyone it covers at sign-in."""
    from django.core.checks import Error

    if not enabled():
        return []
    targets = {
        target.strip()
        for value in settings.OIDC_ROLE_MAP.values()
        for target in str(value).split(";")
        if target.strip()
    }
    return [
        Error(
            f"OIDC_ROLE_MAP maps to {role!r}, which is not a NeoMesh role.",
            hint=f"Roles: {', '.join(sorted(ROLE_PERMISSIONS))}.",
            id="accounts.E001",
        )
        for role in sorted(targets - set(ROLE_PERMISSIONS))
    ]
