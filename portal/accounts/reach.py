"""Reach: the one place that decides which organisations and mailboxes a person or token may see.

- Superusers, and people with `accounts.every_organisation` (NeoMesh's own staff), see everything.
- Anyone else sees the organisations they hold a `Membership` of: every mailbox of the organisation
  when the membership lists none, else only the mailboxes it lists.
- Inactive or anonymous users see nothing.
- An API token sees its grants' mailboxes that also lie within its owner's reach (`within=`).

Every page, count, export, search and API answer narrows its rows through `within_reach` (a row
with a path to a mailbox) or `within_organisations` (a row with a path to an organisation), usually
through a QuerySet method of the row's model (`Message.objects.within_reach(user)`). A row out of
reach is a 404, never a 403: nothing says it exists (`get_within_reach`).
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils.functional import cached_property

from .models import EVERY_ORGANISATION, Membership


def _mailboxes():
    """Mailbox's default manager, read from the relation (the model loads after this module)."""
    return Membership._meta.get_field("mailboxes").related_model.objects


def _organisations():
    return Membership._meta.get_field("organisation").related_model.objects


def sees_everything(user) -> bool:
    """True for active superusers and people given every organisation; never for a token."""
    if not _active(user) or _token(user) is not None:
        return False
    return bool(getattr(user, "is_superuser", False) or user.has_perm(EVERY_ORGANISATION))


def mailboxes_for(user, *, within=None) -> QuerySet:
    """The mailboxes `user` may see; narrowed further to `within` (ids or a queryset) if given."""
    mailboxes = _mailboxes().all()
    if _token(user) is not None:
        mailboxes = mailboxes_for_token(_token(user))
    elif not _active(user):
        mailboxes = mailboxes.none()
    elif not sees_everything(user):
        mailboxes = mailboxes.filter(_member_mailboxes(user))
    if within is not None:
        mailboxes = mailboxes.filter(pk__in=within)
    return mailboxes


def mailboxes_for_token(token, *, scope: str | None = None) -> QuerySet:
    """A token's mailboxes: those its grants (of `scope`, or any) name, within its owner's reach."""
    grants = token.grants.all() if scope is None else token.grants.filter(scope=scope)
    return mailboxes_for(token.owner, within=grants.values("mailboxes"))


def holds_every_mailbox(user) -> bool:
    """True when no mailbox lies outside `user`'s reach (one organisation's members, usually): a
    list then gains nothing by narrowing to their mailboxes, and checks each row instead."""
    if sees_everything(user):
        return True
    return not _mailboxes().exclude(pk__in=mailboxes_for(user).values("pk")).exists()


def organisations_for(user) -> QuerySet:
    """The organisations `user` belongs to (wholly, or through some of their mailboxes)."""
    if _token(user) is not None:
        return _organisations().filter(mailboxes__in=mailboxes_for(user)).distinct()
    if not _active(user):
        return _organisations().none()
    if sees_everything(user):
        return _organisations().all()
    return _organisations().filter(memberships__user=user).distinct()


def whole_organisations_for(user) -> QuerySet:
    """The organisations whose every mailbox `user` may see (memberships with no mailbox limit)."""
    if not _active(user) or _token(user) is not None:
        return _organisations().none()
    if sees_everything(user):
        return _organisations().all()
    return _organisations().filter(
        pk__in=Membership.objects.filter(user=user, mailboxes=None).values("organisation")
    )


def people_for(user) -> QuerySet:
    """The people `user` may see (to name a token's owner, say): themselves, and those holding a
    membership of one of their organisations; everyone for those who see everything."""
    people = Membership._meta.get_field("user").related_model.objects
    if not _active(user) or _token(user) is not None:
        return people.none()
    if sees_everything(user):
        return people.all()
    shared = Membership.objects.filter(organisation__in=organisations_for(user).values("pk"))
    return people.filter(Q(pk=user.pk) | Q(pk__in=shared.values("user")))


def within_reach(
    queryset: QuerySet, user, *, mailbox: str = "mailbox", organisation: str | None = None
) -> QuerySet:
    """`queryset` narrowed to rows whose `mailbox` (a path to a Mailbox) lies within reach; with
    `organisation` (a path to an Organisation), also rows of organisations wholly within reach
    (an onboarding plan of the organisation whose mailbox is not chosen yet)."""
    if sees_everything(user):
        return queryset
    rows = Q(**{f"{mailbox}__in": mailboxes_for(user).values("pk")})
    if organisation:
        rows |= Q(**{f"{organisation}__in": whole_organisations_for(user).values("pk")})
    return queryset.filter(rows)


def within_organisations(queryset: QuerySet, user, *, organisation: str = "organisation"):
    """`queryset` narrowed to rows whose `organisation` path is one `user` belongs to."""
    if sees_everything(user):
        return queryset
    return queryset.filter(**{f"{organisation}__in": organisations_for(user).values("pk")})


def get_within_reach(queryset: QuerySet, **lookup):
    """One row of an already narrowed `queryset`, or 404 (out of reach looks like not there)."""
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError):
        raise Http404(f"No {queryset.model._meta.verbose_name} matches.") from None


def people_reaching(organisation) -> QuerySet:
    """Active people who see at least part of `organisation`: members (whole or limited), and those
    who see everything (superusers, `accounts.every_organisation`, directly or by a role)."""
    users = Membership._meta.get_field("user").related_model.objects.filter(is_active=True)
    app_label, codename = EVERY_ORGANISATION.split(".")
    every = Q(
        user_permissions__codename=codename, user_permissions__content_type__app_label=app_label
    )
    every |= Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    )
    member = Q(pk__in=Membership.objects.filter(organisation=organisation).values("user"))
    return users.filter(member | every | Q(is_superuser=True)).distinct()


def _token(user):
    """The API token behind a token call's user (portal.api.auth.TokenUser), else None."""
    return getattr(user, "api_token", None)


def _active(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _member_mailboxes(user) -> Q:
    """Mailboxes of whole memberships, or listed by a limited one (and of its organisation)."""
    whole = Membership.objects.filter(user=user, mailboxes=None).values("organisation")
    listed = Membership.mailboxes.through.objects.filter(
        membership__user=user, mailbox__organisation=F("membership__organisation")
    ).values("mailbox")
    return Q(organisation__in=whole) | Q(pk__in=listed)


class Reach:
    """One person's reach, as `request.reach` (ReachMiddleware): for the apps below the domain
    layer, which may not import this module (the audit trail)."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def sees_everything(self) -> bool:
        return sees_everything(self.user)

    @cached_property
    def mailbox_pks(self) -> list[int]:
        """The pks of the mailboxes within reach (a person's are few)."""
        return list(mailboxes_for(self.user).values_list("pk", flat=True))

    @cached_property
    def holds_every_mailbox(self) -> bool:
        return holds_every_mailbox(self.user)
