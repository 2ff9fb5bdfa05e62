"""Writing the audit trail. Every person's change or sensitive read, and every worker action."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.lib.http import normalise_ip

from .actors import Actor
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


@transaction.atomic
def record(
    *,
    action: str,
    actor: Actor,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict | None = None,
    reason: str = "",
    detail: str = "",
) -> AuditRecord:
    """Append one sealed record to the chain, inside the caller's transaction when there is one.

    `actor` is decided at the edge (`Actor.person(request)`, `Actor.worker()`, `Actor.command()`,
    `Actor.token(...)`, `Actor.system()`), so a record says who acted however deep it is written.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    head, _ = ChainHead.objects.select_for_update().get_or_create(pk=1)
    entry = AuditRecord(
        seq=head.last_seq + 1,
        at=_sealing_time(head),
        actor=actor.user,
        actor_label=actor.label[:200],
        actor_kind=actor.kind,
        ip_address=normalise_ip(actor.ip),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=mask_changes(changes or {}),
        reason=reason,
        detail=detail,
        prev_hash=head.last_hash,
        key_id=current_key_id(),
    )
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
