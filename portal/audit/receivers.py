"""Seal django-auditlog's model-change entries, and logins, into the audit chain.

Failed sign-ins are not recorded one by one (anyone can make them): the lockout they lead to is,
once per window (portal/accounts/receivers.py).
"""

from __future__ import annotations

from auditlog import get_logentry_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from .actors import Actor, Kind
from .services import record, stored_mailbox

ACTIONS = {0: "create", 1: "update", 2: "delete", 3: "access"}


@receiver(post_save, sender=get_logentry_model(), dispatch_uid="neomesh_seal_logentry")
def seal_logentry(sender, instance, created: bool, raw: bool = False, **kwargs):
    """Every entry django-auditlog writes, field changes and many-to-many changes alike.

    Many-to-many entries (group memberships, permissions) never send auditlog's `post_log`, so the
    entry's own save is the one place that sees them all.
    """
    if not created or raw:
        return
    content_type = instance.content_type
    record(
        action=f"{content_type.model}.{ACTIONS.get(instance.action, instance.action)}",
        actor=_logentry_actor(instance),
        object_type=f"{content_type.app_label}.{content_type.model}",
        object_id=str(instance.object_pk),
        object_repr=instance.object_repr[:300],
        changes=_changes(instance.changes_dict),
        mailbox_pk=stored_mailbox(content_type.model_class(), instance.object_pk),
    )


def _logentry_actor(entry) -> Actor:
    """The person who made the change, or the system; AuditMiddleware noted where a person's change
    came from (the trusted client address)."""
    ip = entry.remote_addr or None
    if entry.actor is None:
        return Actor(kind=Kind.SYSTEM, label="anonymous", ip=ip)
    return Actor(kind=Kind.PERSON, label=entry.actor.get_username(), user=entry.actor, ip=ip)


def _changes(changes: dict) -> dict:
    """`{field: [before, after]}`; a many-to-many change as `{field: {"added": [...]}}`."""
    return {
        field: {"added" if value["operation"] == "add" else "removed": value["objects"]}
        if isinstance(value, dict) and value.get("type") == "m2m"
        else value
        for field, value in (changes or {}).items()
    }


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    record(action="auth.login", actor=Actor.person(request, user=user), obj=user)


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        record(action="auth.logout", actor=Actor.person(request, user=user), obj=user)
