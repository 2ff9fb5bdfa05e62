"""Sign-in lockouts (recorded once per window, listed and lifted by admins) and single sign-on's
sign-ins, refusals, role and reach changes and break-glass sign-ins: every step audited."""

from __future__ import annotations

import logging

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone

from portal.audit.actors import Kind
from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.lib.http import client_ip

from .models import EVERY_ORGANISATION, Membership, SsoIdentity
from .roles import ROLE_PERMISSIONS, ensure_roles
from .sso import Decision, SsoRefused
from .throttling import client_address, lock_scope, pair_failures

logger = logging.getLogger(__name__)

LOCKOUT = "auth.lockout"


def signin_lockout_record(*, request, username: str | None) -> AuditRecord | None:
    """`auth.lockout` for this lock, unless one was recorded within the cool-off window."""
    address = client_address(request)
    pair = f"username {str(username or '')[:150]!r} from {address}"
    # The lock that holds: this username at this address first (django-axes' own), else the wider.
    scope = (
        pair
        if pair_failures(request, username) >= settings.AXES_FAILURE_LIMIT
        else (lock_scope(request) or pair)
    )
    detail = f"Sign-in locked: {scope}"
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    if AuditRecord.objects.filter(action=LOCKOUT, detail=detail, at__gte=since).exists():
        return None
    who = Actor(kind=Kind.PERSON, label=str(username or "unknown")[:150], ip=client_ip(request))
    return record(action=LOCKOUT, actor=who, detail=detail)


def signin_lockouts():
    """Sign-in failures within the cool-off window, by username and address, most failures first."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return (
        AccessAttempt.objects.filter(attempt_time__gte=since)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .order_by("-failures", "username")
    )


@transaction.atomic
def signin_unlock(*, username: str = "", address: str = "", request=None) -> int:
    """Clear the sign-in failures of a username, an address, or both; returns how many records.

    Audited `auth.lockout_cleared` per record, as the person (`request`) or the command's operator.
    """
    if not username and not address:
        raise ValueError("Name a username, an address, or both.")
    attempts = AccessAttempt.objects.all()
    if username:
        attempts = attempts.filter(username=username)
    if address:
        attempts = attempts.filter(ip_address=address)
    cleared = list(attempts)
    for attempt in cleared:
        detail = (
            f"Sign-in failures of {attempt.username!r} from {attempt.ip_address} cleared "
            f"({attempt.failures_since_start} failures)"
        )
        if request is not None:
            record(
                actor=Actor.person(request),
                action="auth.lockout_cleared",
                obj=attempt,
                detail=detail,
            )
        else:
            record(actor=Actor.command(), action="auth.lockout_cleared", obj=attempt, detail=detail)
    attempts.delete()
    return len(cleared)


# Single sign-on (portal/accounts/sso.py decides from the claims; these apply and audit).
SSO_SIGNIN, SSO_SIGNOUT, SSO_REFUSED = "sso.signin", "sso.signout", "sso.refused"
SSO_ROLES_CHANGED, SSO_REACH_CHANGED = "sso.roles_changed", "sso.reach_changed"
BREAK_GLASS = "auth.break_glass"


def _sso_actor(username: str, ip: str | None, user=None) -> Actor:
    return Actor(kind=Kind.PERSON, label=username[:150] or "unknown", user=user, ip=ip)


@transaction.atomic
def sso_signin(*, decision: Decision, issuer: str, ip: str | None = None):
    """The user of a provider's account, with the roles and organisations its claims map to.

    Found by (issuer, subject); a first sign-in links a local account of the same name (never a
    superuser or a break-glass account) or creates one without a password. Roles (the groups of
    `roles.py`) and organisations are set exactly as the claims say, every change audited.
    Raises SsoRefused (audited by the caller) for a disabled or unlinkable account.
    """
    User = get_user_model()
    identity = (
        SsoIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=issuer, subject=decision.subject)
        .first()
    )
    if identity is not None:
        user = identity.user
    else:
        user = User.objects.filter(username=decision.username).first()
        if user is not None and (
            user.is_superuser
            or user.username in settings.BREAK_GLASS_USERNAMES
            or user.sso_identities.exists()
        ):
            raise SsoRefused(
                "name_taken",
                f"A NeoMesh account named {decision.username} already exists and cannot be "
                "joined to your sign-on account. Ask your NeoMesh administrator.",
                username=decision.username,
            )
        if user is None:
            user = User(username=decision.username)
            user.set_unusable_password()
            user.save()
        identity = SsoIdentity.objects.create(user=user, issuer=issuer, subject=decision.subject)
        record(
            action="sso.linked",
            actor=_sso_actor(decision.username, ip, user),
            obj=user,
            detail=f"Sign-on account {decision.subject!r} at {issuer} linked to {user.username}",
        )
    if not user.is_active:
        raise SsoRefused(
            "disabled",
            f"Your NeoMesh account {user.username} is disabled. Ask your NeoMesh administrator.",
            username=user.username,
        )
    actor = _sso_actor(user.username, ip, user)
    changed = [
        name
        for name, value in (
            ("email", decision.email),
            ("first_name", decision.first_name),
            ("last_name", decision.last_name),
        )
        if value and getattr(user, name) != value
    ]
    for name in changed:
        setattr(user, name, getattr(decision, name))
    if changed:
        user.save(update_fields=changed)
    _sso_set_roles(user, decision, actor)
    _sso_set_reach(user, decision, actor)
    identity.last_signed_in_at = timezone.now()
    identity.save(update_fields=["last_signed_in_at"])
    record(
        action=SSO_SIGNIN,
        actor=actor,
        obj=user,
        detail=f"Signed in through {issuer} as {decision.subject!r}; roles: "
        f"{', '.join(sorted(decision.roles))}",
    )
    return user


def _sso_set_roles(user, decision: Decision, actor: Actor) -> None:
    managed = Group.objects.filter(name__in=list(ROLE_PERMISSIONS))
    before = set(user.groups.filter(pk__in=managed).values_list("name", flat=True))
    if before == set(decision.roles):
        return
    ensure_roles()
    user.groups.remove(*managed.exclude(name__in=decision.roles))
    user.groups.add(*Group.objects.filter(name__in=decision.roles))
    record(
        action=SSO_ROLES_CHANGED,
        actor=actor,
        obj=user,
        changes={"roles": [sorted(before), sorted(decision.roles)]},
        detail="Roles set from the identity provider's claims",
    )


def _sso_set_reach(user, decision: Decision, actor: Actor) -> None:
    """Memberships of exactly the claimed organisations (a membership's mailbox limits kept), and
    every organisation for `*`. ODS codes NeoMesh does not know are left out (none left: refused).
    """
    Organisation = Membership._meta.get_field("organisation").related_model
    wanted = set(
        Organisation.objects.filter(ods_code__in=decision.organisations).values_list(
            "ods_code", flat=True
        )
    )
    if not wanted and not decision.every_organisation:
        raise SsoRefused(
            "no_organisation",
            f"You signed in as {user.username}, but NeoMesh does not know any organisation your "
            f"groups name ({', '.join(sorted(decision.organisations))}). Ask your NeoMesh "
            "administrator.",
            username=user.username,
        )
    memberships = Membership.objects.filter(user=user).select_related("organisation")
    before = {m.organisation.ods_code for m in memberships}
    every_perm = Permission.objects.get(
        content_type__app_label="accounts", codename=EVERY_ORGANISATION.split(".")[1]
    )
    had_every = user.user_permissions.filter(pk=every_perm.pk).exists()
    if before == wanted and had_every == decision.every_organisation:
        return
    memberships.exclude(organisation__ods_code__in=wanted).delete()
    for organisation in Organisation.objects.filter(ods_code__in=wanted - before):
        Membership.objects.create(user=user, organisation=organisation)
    if decision.every_organisation:
        user.user_permissions.add(every_perm)
    else:
        user.user_permissions.remove(every_perm)
    record(
        action=SSO_REACH_CHANGED,
        actor=actor,
        obj=user,
        changes={
            "organisations": [sorted(before), sorted(wanted)],
            "every_organisation": [had_every, decision.every_organisation],
        },
        detail="Organisations set from the identity provider's claims",
    )


def sso_refusal_record(*, refusal: SsoRefused, issuer: str, ip: str | None = None):
    return record(
        action=SSO_REFUSED,
        actor=_sso_actor(refusal.username or "unknown", ip),
        reason=refusal.reason,
        detail=f"Sign-on through {issuer} refused: {refusal.message}"[:2000],
    )


def sso_signout_record(*, user, issuer: str, provider_session_ended: bool, ip: str | None = None):
    ended = "and its session there ended" if provider_session_ended else "(provider session kept)"
    return record(
        action=SSO_SIGNOUT,
        actor=_sso_actor(user.get_username(), ip, user),
        obj=user,
        detail=f"Signed out of NeoMesh {ended}: {issuer}",
    )


def break_glass_record(*, user, ip: str | None = None):
    """A password sign-in while local accounts are off: loud in the log and in the audit trail."""
    logger.critical(
        "BREAK-GLASS sign-in: %s signed in with a password while LOCAL_ACCOUNTS_ENABLED is off "
        "(from %s)",
        user.get_username(),
        ip or "an unknown address",
    )
    return record(
        action=BREAK_GLASS,
        actor=_sso_actor(user.get_username(), ip, user),
        obj=user,
        detail="Break-glass password sign-in while local accounts are switched off",
    )
