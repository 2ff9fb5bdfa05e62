"""Seal django-auditlog's model-change entries, and logins, into the audit chain."""

from __future__ import annotations

from auditlog.signals import post_log
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .services import record

ACTIONS = {0: "create", 1: "update", 2: "delete", 3: "access"}


@receiver(post_log)
def seal_logentry(sender, instance, action, changes, log_entry, log_created, error=None, **kwargs):
    if not log_created or log_entry is None:
        return
    model_label = instance._meta.label_lower
    record(
        action=f"{model_label.split('.')[-1]}.{ACTIONS.get(action, action)}",
        actor=log_entry.actor,
        actor_kind="person" if log_entry.actor_id else "system",
        obj=instance,
        object_repr=log_entry.object_repr[:300],
        changes=log_entry.changes_dict,
        detail="",
        # AuditlogMiddleware notes where a person's change came from.
        ip_address=getattr(log_entry, "remote_addr", None) or None,
    )


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    record(action="auth.login", actor=user, request=request, obj=user)


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        record(action="auth.logout", actor=user, request=request, obj=user)


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record(
        action="auth.login_failed", actor_kind="person", actor_label=username or "unknown",
        request=request, detail=f"Failed sign-in for {username!r}",
    )  # fmt: skip
