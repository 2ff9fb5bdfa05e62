"""Writing the audit trail. Every person's change or sensitive read, and every worker action."""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.lib.http import normalise_ip

from .actors import Actor
from .models import AuditRecord, ChainHead, actor_key
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
    mailbox_pk: int | None = None,
) -> AuditRecord:
    """Append one sealed record to the chain, inside the caller's transaction when there is one.

    `actor` is decided at the edge (`Actor.person(request)`, `Actor.worker()`, `Actor.command()`,
    `Actor.token(...)`, `Actor.system()`), so a record says who acted however deep it is written.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    entry = AuditRecord(
        mailbox_pk=mailbox_pk if obj is None else record_mailbox(obj),
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
    )
    pending = getattr(_together, "entries", None)
    if pending is not None:
        pending.append(entry)  # sealed with the others when `sealed_together` ends
    else:
        _seal([entry])
    return entry


def record_mailbox(obj) -> int | None:
    """The mailbox (pk) of `obj` when its model names one for the trail (`audit_mailbox`, the
    attribute holding it, dotted through a relation as "message.mailbox_id"), else None."""
    path = getattr(type(obj), "audit_mailbox", None)
    return operator.attrgetter(path)(obj) if path else None


def stored_mailbox(model, pk) -> int | None:
    """The mailbox (pk) of `model`'s row `pk` as `record_mailbox` reads it, for a record written
    without the object (a django-auditlog entry); None if the model names none or the row is gone."""
    path = getattr(model, "audit_mailbox", None)
    if not path:
        return None
    rows = model._default_manager.filter(pk=pk)
    return rows.values_list(path.replace(".", "__"), flat=True).first()


_together = threading.local()


@contextmanager
def sealed_together() -> Iterator[None]:
    """One transaction whose audit records are sealed together when it ends.

    Inside, `record` only collects each record; at the end they are sealed in the order written,
    each over the one before exactly as one at a time, under one lock of the chain head, with one
    insert and one head update, in the same transaction as the changes they record. For work that
    writes many records at once (a poll storing a batch of messages); the chain is the same as
    if they had been written one by one. Records are in the trail only when the block ends: code
    inside must not read back the records it writes. Nested, the outer block seals them all.
    """
    with transaction.atomic():
        if getattr(_together, "entries", None) is not None:
            yield
            return
        _together.entries = []
        try:
            yield
            entries = _together.entries
        finally:
            _together.entries = None
        if entries:
            _seal(entries)


@transaction.atomic
def _seal(entries: list[AuditRecord]) -> None:
    """Chain and save records under the locked head, inside the caller's transaction if any."""
    head, _ = ChainHead.objects.select_for_update().get_or_create(pk=1)
    seq, prev_hash, key_id = head.last_seq, head.last_hash, current_key_id()
    at = _sealing_time(head)
    for entry in entries:
        seq += 1
        entry.seq, entry.at, entry.prev_hash, entry.key_id = seq, at, prev_hash, key_id
        entry.hash = prev_hash = entry.compute_hash()
    for entry in entries:
        entry.actor_key = actor_key(entry.actor_label)  # what save() sets
    AuditRecord.objects.bulk_create(entries)
    ChainHead.objects.filter(pk=1).update(last_seq=seq, last_hash=prev_hash, last_at=at)


def _sealing_time(head: ChainHead):
    """Now, or the previous record's time if this host's clock is behind the one that sealed it."""
    previous = head.last_at
    if previous is None and head.last_seq:  # a chain sealed before the head kept its time
        previous = (
            AuditRecord.objects.filter(seq=head.last_seq).values_list("at", flat=True).first()
        )
    now = timezone.now()
    return max(now, previous) if previous else now
