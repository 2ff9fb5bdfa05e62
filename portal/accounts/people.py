"""People management: invite, roles, reach, disable and enable; each step audited.

An invitation creates the account with no usable password and a one-time link to set one
(Django's password-reset token: it stops working once the password is set, and after
`PEOPLE_INVITE_DAYS`). The link goes by email when `PEOPLE_INVITE_EMAIL` is on and the person has
an address (the alert emails' settings: EMAIL_*); otherwise it is shown once to the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import get_connection, send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal.audit.services import Actor, record

from .models import EVERY_ORGANISATION, AuthenticatorDevice, Membership
from .roles import MAILBOX_ADMIN


class PeopleError(Exception):
    """A change to a person that the rules refuse (in words for the admin)."""


def people_list():
    """Every person with their roles and whether an authenticator is set up, by username."""
    confirmed = AuthenticatorDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    app_label, codename = EVERY_ORGANISATION.split(".")
    every = Permission.objects.filter(content_type__app_label=app_label, codename=codename).filter(
        Q(user=OuterRef("pk")) | Q(group__user=OuterRef("pk"))
    )
    memberships = Membership.objects.select_related("organisation").prefetch_related("mailboxes")
    return (
        User.objects.annotate(has_factor=Exists(confirmed), every_organisation=Exists(every))
        .prefetch_related(
            Prefetch("groups", queryset=Group.objects.order_by("name")),
            Prefetch("memberships", queryset=memberships),
        )
        .order_by("username")
    )


def people_with_status() -> list:
    """`people_list()` with `factor_needed` on each person, in three queries whatever the count."""
    rows = list(people_list())
    needing = roles_needing_factor()
    for person in rows:
        groups = {group.name for group in person.groups.all()}
        person.factor_needed = settings.MFA_REQUIRED and (
            person.is_superuser or bool(groups & needing)
        )
    return rows


def roles_needing_factor() -> set[str]:
    """Role names whose holders must pass a second factor (for lists; one query)."""
    perms = Q()
    for dotted in settings.MFA_REQUIRED_PERMISSIONS:
        app_label, codename = dotted.split(".")
        perms |= Q(content_type__app_label=app_label, codename=codename)
    needing = Permission.objects.filter(perms).values("group__name")
    return {MAILBOX_ADMIN} | {row["group__name"] for row in needing if row["group__name"]}


def invite_path(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("accounts:password_set", args=[uid, default_token_generator.make_token(user)])


@transaction.atomic
def person_invite(
    *, username: str, email: str, first_name: str, last_name: str, groups, actor: Actor
) -> User:
    """A new account without a usable password, in the given roles; audited `person.invited`."""
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_unusable_password()
    user.save()
    user.groups.set(groups)
    names = ", ".join(sorted(group.name for group in groups)) or "no role"
    record(actor=actor, action="person.invited", obj=user, detail=f"roles: {names}")
    return user


def invite_send(*, user, url: str) -> bool:
    """Email the set-your-password link; False when email is off, no address, or the server fails."""
    if not settings.PEOPLE_INVITE_EMAIL or not user.email:
        return False
    days = settings.PEOPLE_INVITE_DAYS
    text = (
        f"You have been invited to NeoMesh as {user.get_username()}.\n\n"
        f"Set your password here (the link works once, for {days} days):\n{url}\n"
    )
    try:
        send_mail(
            "Your NeoMesh account",
            text,
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
            connection=get_connection(timeout=settings.ALERTS_SEND_TIMEOUT_SECONDS),
        )
    except Exception:  # noqa: BLE001 - refused connections, SMTP errors, timeouts alike
        return False
    return True


@transaction.atomic
def person_roles_set(*, user, groups, actor: Actor) -> None:
    before = sorted(user.groups.values_list("name", flat=True))
    after = sorted(group.name for group in groups)
    if before == after:
        return
    user.groups.set(groups)
    record(
        actor=actor,
        action="person.roles_changed",
        obj=user,
        changes={"roles": [", ".join(before), ", ".join(after)]},
    )


def reach_summary(user) -> str:
    """Reach in words, for the audit trail and the pages."""
    if user.is_superuser or user.has_perm(EVERY_ORGANISATION):
        return "every organisation"
    parts = []
    for membership in user.memberships.select_related("organisation").prefetch_related("mailboxes"):
        limited = sorted(m.mailbox_id for m in membership.mailboxes.all())
        name = str(membership.organisation)
        parts.append(f"{name}: only {', '.join(limited)}" if limited else name)
    return "; ".join(parts) or "nothing"


def every_organisation_permission() -> Permission:
    app_label, codename = EVERY_ORGANISATION.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@transaction.atomic
def person_reach_set(*, user, every: bool, organisations, mailboxes, actor: Actor) -> None:
    """Set a person's reach exactly: every organisation (a permission of their own), whole
    organisations, and single mailboxes of other organisations; audited `person.reach_changed`."""
    before = reach_summary(user)
    if every:
        user.user_permissions.add(every_organisation_permission())
    else:
        user.user_permissions.remove(every_organisation_permission())
    whole = {organisation.pk for organisation in organisations}
    limited: dict[int, list] = {}
    for mailbox in mailboxes:
        if mailbox.organisation_id not in whole:
            limited.setdefault(mailbox.organisation_id, []).append(mailbox)
    Membership.objects.filter(user=user).exclude(organisation__in=whole | set(limited)).delete()
    for organisation_id in whole | set(limited):
        membership, _ = Membership.objects.get_or_create(user=user, organisation_id=organisation_id)
        membership.mailboxes.set(limited.get(organisation_id, []))
    user = type(user).objects.get(pk=user.pk)  # permissions are cached on the instance
    after = reach_summary(user)
    if before != after:
        record(
            actor=actor,
            action="person.reach_changed",
            obj=user,
            changes={"reach": [before, after]},
        )


@transaction.atomic
def person_active_set(*, user, active: bool, actor: Actor, reason: str = "") -> None:
    """Disable (they cannot sign in; their sessions end at the next request) or enable again."""
    if not active and actor.user is not None and actor.user.pk == user.pk:
        raise PeopleError("You cannot disable your own account.")
    if user.is_active == active:
        return
    user.is_active = active
    user.save(update_fields=["is_active"])
    action = "person.enabled" if active else "person.disabled"
    record(actor=actor, action=action, obj=user, reason=reason)
