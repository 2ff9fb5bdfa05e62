"""The second factor: who must have one, the session's proof of it, and the step-up.

- **Who** (`factor_required`): with `MFA_REQUIRED` on (the default), superusers, mailbox admins and
  anyone holding one of `MFA_REQUIRED_PERMISSIONS` (send, download payloads, override the gate).
  `FactorMiddleware` sends such a person, once signed in with a password, to verify a code (or to
  enrol an authenticator app first) before any other page.
- **Proof**: `factor_mark_verified` writes the user and the moment into the session; a new sign-in
  clears it (`receivers.py`). A person signed in through OpenID Connect whose provider asserted a
  second factor (`amr`, see `oidc_asserted_mfa`) is marked by the sign-in itself, method `oidc`.
- **Step-up** (`step_up_required`, `step_up_needed`): the dangerous actions (override the readiness
  gate, change a live mailbox's credentials or host, download a payload, create an API token) need
  a factor checked within `STEP_UP_MINUTES`; otherwise the person is sent to verify and back.
- **Devices**: an authenticator app (`models.AuthenticatorDevice`, key encrypted at rest) and
  recovery codes (django-otp's `StaticDevice`; each token is stored as a slow salted hash, shown
  once, and consumed when used).
- **Guessing**: each wrong code counts as a failed sign-in of that username in django-axes
  (`portal.accounts.throttling`), so the same lockout ends a guesser's session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from base64 import b32encode
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from portal.audit.services import Actor, record

from .models import AuthenticatorDevice
from .roles import MAILBOX_ADMIN

SESSION_KEY = "neomesh_factor"
RECOVERY_CODES = 10
METHOD_OIDC = "oidc"


def factor_required(user) -> bool:
    """Whether this person must pass a second factor after a password sign-in."""
    if not settings.MFA_REQUIRED or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if any(group.name == MAILBOX_ADMIN for group in user.groups.all()):
        return True
    return any(user.has_perm(perm) for perm in settings.MFA_REQUIRED_PERMISSIONS)


def oidc_asserted_mfa(claims: dict) -> bool:
    """Whether an OpenID Connect ID token's `amr` says the provider checked a second factor.

    The hook for the OIDC sign-in: when true it calls `factor_mark_verified(request, method="oidc")`
    after logging the person in, and they are not asked for a local code. `MFA_OIDC_AMR_VALUES`
    lists the `amr` values that count (RFC 8176: mfa, otp, hwk, sc, ...)."""
    amr = claims.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    return bool(set(map(str, amr)) & set(settings.MFA_OIDC_AMR_VALUES))


def factor_mark_verified(request, *, method: str) -> None:
    """The signed-in person passed a second factor now (`method`: totp, recovery or oidc)."""
    request.session[SESSION_KEY] = {"user": request.user.pk, "at": time.time(), "method": method}


def factor_clear(request) -> None:
    request.session.pop(SESSION_KEY, None)


def _proof(request) -> dict | None:
    proof = request.session.get(SESSION_KEY)
    if isinstance(proof, dict) and proof.get("user") == request.user.pk:
        return proof
    return None


def factor_verified(request) -> bool:
    return _proof(request) is not None


def factor_fresh(request) -> bool:
    """A factor was checked in this session within `STEP_UP_MINUTES`."""
    proof = _proof(request)
    return proof is not None and time.time() - proof["at"] <= settings.STEP_UP_MINUTES * 60


def authenticator_for(user, *, confirmed: bool = True) -> AuthenticatorDevice | None:
    return AuthenticatorDevice.objects.filter(user=user, confirmed=confirmed).first()


def factor_url(request, *, step_up: bool = False, next_url: str | None = None) -> str:
    """The page that checks (or enrols) this person's factor, coming back to `next_url` (by default
    this request's page; for a POST, the page it was sent from, to do it again)."""
    name = "accounts:factor_verify" if authenticator_for(request.user) else "accounts:factor_enrol"
    if next_url is None:
        next_url = request.get_full_path()
        if request.method != "GET":
            referer = request.headers.get("Referer", "")
            same_site = url_has_allowed_host_and_scheme(
                referer, {request.get_host()}, request.is_secure()
            )
            next_url = referer if same_site else ""
    query = {"next": next_url}
    if step_up:
        query["step_up"] = "1"
    return f"{reverse(name)}?{urlencode(query)}"


def step_up_needed(request) -> bool:
    """Whether a dangerous action must wait for a fresh factor check (None of it when MFA is off)."""
    return factor_required(request.user) and not factor_fresh(request)


def step_up_redirect(request):
    minutes = settings.STEP_UP_MINUTES
    messages.info(
        request,
        f"This action needs your second factor checked within the last {minutes} minutes: "
        "enter a code, then carry on.",
    )
    return redirect(factor_url(request, step_up=True))


def step_up_required(view):
    """Before a dangerous action: a factor checked within `STEP_UP_MINUTES`, else verify and back.

    A POST that arrives stale is not carried out; the person comes back to the page (GET) to redo it.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated and step_up_needed(request):
            return step_up_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper


# Devices


def _normalise(code: str) -> str:
    return "".join(ch for ch in str(code).lower() if ch.isalnum())[:64]


def recovery_hash(user, code: str) -> str:
    """What is stored for a recovery code: a slow hash salted with the person, 16 characters."""
    salt = f"neomesh-recovery:{user.pk}".encode()
    digest = hashlib.pbkdf2_hmac("sha256", _normalise(code).encode(), salt, 20_000)
    return b32encode(digest).decode()[:16].lower()


def _recovery_code() -> str:
    text = b32encode(secrets.token_bytes(10)).decode()[:12].lower()
    return "-".join(text[i : i + 4] for i in range(0, 12, 4))


@transaction.atomic
def authenticator_start(*, user) -> AuthenticatorDevice:
    """The unconfirmed authenticator this person is enrolling (a new key unless one is pending)."""
    pending = authenticator_for(user, confirmed=False)
    return pending or AuthenticatorDevice.objects.create(
        user=user, name="Authenticator app", confirmed=False
    )


@transaction.atomic
def recovery_codes_create(*, user, actor: Actor) -> list[str]:
    """New recovery codes (any earlier ones stop working); the codes themselves are never stored."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=recovery_hash(user, code)) for code in codes
    )
    record(
        actor=actor, action="auth.recovery_codes_created", obj=user, detail=f"{len(codes)} codes"
    )
    return codes


@transaction.atomic
def authenticator_confirm(*, device: AuthenticatorDevice, code: str, actor: Actor) -> bool:
    """Confirm an enrolment with its first code; other authenticators of the person are removed."""
    if not device.verify_token(code):
        return False
    AuthenticatorDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    record(actor=actor, action="auth.factor_enrolled", obj=device.user, detail="authenticator app")
    return True


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user).count()


@transaction.atomic
def factor_check(*, user, code: str, actor: Actor) -> str | None:
    """Check a code from the authenticator app or a recovery code; the method that matched, or None.

    A recovery code works once. Both devices are throttled by django-otp (a growing delay after each
    failure); the caller also counts the failure against the sign-in lockout."""
    device = authenticator_for(user)
    normal = _normalise(code)
    if device and normal.isdigit() and device.verify_token(normal):
        return "totp"
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if recovery and len(normal) == 12 and recovery.verify_token(recovery_hash(user, normal)):
        left = recovery_codes_left(user)
        record(
            actor=actor,
            action="auth.recovery_code_used",
            obj=user,
            detail=f"{left} recovery codes left",
        )
        return "recovery"
    return None


@transaction.atomic
def factor_reset(*, user, actor: Actor, reason: str = "") -> None:
    """Remove a person's authenticator and recovery codes: they enrol again at their next sign-in."""
    AuthenticatorDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    record(actor=actor, action="auth.factor_reset", obj=user, reason=reason)


def factor_status(user) -> str:
    """For the people list: enrolled, not enrolled (and needed), or not needed."""
    if authenticator_for(user):
        return "enrolled"
    return "missing" if factor_required(user) else "not needed"
