"""Writing the audit trail. Every person's change or sensitive read, and every worker action."""

from __future__ import annotations

import os
import socket
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.accounts.addresses import client_ip, normalise_ip

from .models import AuditRecord, ChainHead
from .sealing import current_key_id

SECRET_MASK = "•••••• (secret)"
# Field names whose values never reach the audit trail.
SECRET_FIELDS = {"password", "shared_key", "private_key", "password1", "password2", "key_pem"}


def mask_secret(value: str) -> str:
    """AUDITLOG_MASK_CALLABLE: django-auditlog's default would show half the secret."""
    return SECRET_MASK if value else ""


def mask_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        field: [SECRET_MASK if v not in (None, "") else v for v in values]
        if field in SECRET_FIELDS and isinstance(values, list | tuple)
        else values
        for field, values in (changes or {}).items()
    }


def _worker_label() -> str:
    return f"worker {socket.gethostname()}:{os.getpid()}"


@transaction.atomic
def record(
    *,
    action: str,
    actor=None,
    actor_kind: str | None = None,
    actor_label: str = "",
    request=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict | None = None,
    reason: str = "",
    detail: str = "",
    ip_address: str | None = None,
) -> AuditRecord:
    """Append one sealed record to the chain. `ip_address` is for callers without a request."""
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if actor_kind is None:
        actor_kind = (
            AuditRecord.ActorKind.PERSON if (actor or request) else AuditRecord.ActorKind.SYSTEM
        )
    if not actor_label:
        actor_label = actor.get_username() if actor is not None else (
            _worker_label() if actor_kind == AuditRecord.ActorKind.WORKER else "anonymous"
        )  # fmt: skip
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    head, _ = ChainHead.objects.select_for_update().get_or_create(pk=1)
    entry = AuditRecord(
        seq=head.last_seq + 1, at=_sealing_time(head), actor=actor, actor_label=actor_label[:200],
        actor_kind=actor_kind, ip_address=client_ip(request) or normalise_ip(ip_address),
        action=action, object_type=object_type, object_id=object_id, object_repr=object_repr,
        changes=mask_changes(changes or {}), reason=reason, detail=detail, prev_hash=head.last_hash,
        key_id=current_key_id(),
    )  # fmt: skip
    entry.hash = entry.compute_hash()
    entry.save()
    ChainHead.objects.filter(pk=1).update(
        last_seq=entry.seq, last_hash=entry.hash, last_at=entry.at
    )
    return entry


def _sealing_time(head: ChainHead):
    """Now, or the previous record's time if this host's clock is behind the one that sealed it."""
    previous = head.last_at
    if previous is None and head.last_seq:  # a chain sealed before the head kept its time
        previous = (
            AuditRecord.objects.filter(seq=head.last_seq).values_list("at", flat=True).first()
        )
    now = timezone.now()
    return max(now, previous) if previous else now


def audit_worker_action(*, action: str, obj=None, detail: str = "", changes: dict | None = None):
    return record(
        action=action,
        actor_kind=AuditRecord.ActorKind.WORKER,
        obj=obj,
        detail=detail,
        changes=changes,
    )


def audit_person_action(
    request, *, action: str, obj=None, detail: str = "", reason: str = "", changes=None
):
    return record(
        action=action, request=request, obj=obj, detail=detail, reason=reason, changes=changes
    )


def audit_command_action(*, action: str, obj=None, detail: str = ""):
    """An operator's management command: the OS user on this host is the actor."""
    import getpass

    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "unknown"
    return record(
        action=action, actor_kind=AuditRecord.ActorKind.PERSON,
        actor_label=f"command line ({who}@{socket.gethostname()})", obj=obj, detail=detail,
    )  # fmt: skip
