"""Plain builder functions for tests (no factory library until it hurts)."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group, Permission, User

from portal.accounts import roles
from portal.accounts.models import Membership
from portal.mailboxes.models import Environment, Mailbox, Organisation, Workflow

from .sandbox import PASSWORD, SHARED_KEY

_counter = itertools.count(1)


def make_organisation(**kwargs) -> Organisation:
    kwargs.setdefault("name", "Demo Org")
    kwargs.setdefault("ods_code", "X26")
    org, _ = Organisation.objects.get_or_create(ods_code=kwargs["ods_code"], defaults=kwargs)
    return org


def make_mailbox(mailbox_id: str = "X26ABC1", *, workflows=("TEST_WORKFLOW",), **kwargs) -> Mailbox:
    kwargs.setdefault("organisation", make_organisation())
    kwargs.setdefault("environment", Environment.SANDBOX)
    kwargs.setdefault("password", PASSWORD)
    kwargs.setdefault("shared_key", SHARED_KEY)
    mailbox = Mailbox.objects.create(mailbox_id=mailbox_id, **kwargs)
    for workflow_id in workflows:
        for direction in (Workflow.Direction.SEND, Workflow.Direction.RECEIVE):
            Workflow.objects.create(mailbox=mailbox, workflow_id=workflow_id, direction=direction)
    return mailbox


def make_user(
    role: str | None = None,
    *,
    username: str | None = None,
    superuser: bool = False,
    organisations=None,
    **kwargs,
) -> User:
    """A person with `role`. Reach: every organisation unless `organisations` names theirs
    (organisations or `(organisation, [mailboxes])` pairs; empty: no reach at all)."""
    username = username or f"user{next(_counter)}"
    user = User.objects.create_user(username=username, password="a-long-test-password", **kwargs)
    if organisations is None:
        user.user_permissions.add(every_organisation_permission())
    for item in organisations or ():
        organisation, mailboxes = item if isinstance(item, tuple) else (item, ())
        Membership.objects.create(user=user, organisation=organisation).mailboxes.set(mailboxes)
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    if role:
        # Every migrate and flush makes the roles; a test that deleted one gets it back.
        if not Group.objects.filter(name=role).exists():
            roles.ensure_roles()
        user.groups.add(Group.objects.get(name=role))
    return user


def every_organisation_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename="every_organisation")
