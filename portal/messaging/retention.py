"""Payload retention: purge payloads N days after delivery is confirmed (or after receipt or
acceptance), never a payload under legal hold or not yet delivered; keep everything else.

Purging removes the payload from the store and keeps the message, its timeline and its audit trail,
with the rule it was purged under (`Message.payload_purge_rule`, a `purged` event and a
`message.payload_purged` audit record). The sweep runs on the workers (scheduled hourly,
`tasks.purge_payloads`); `manage.py retention_purge --dry-run` lists what it would purge.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.lib import payloads

from .models import Direction, LegalHold, Message, MessageEvent, RetentionRule, Status

Kind = MessageEvent.Kind
BATCH = 500
_WILDCARDS = set("*?[")


def _specificity(rule: RetentionRule) -> tuple:
    exact_workflow = not (_WILDCARDS & set(rule.workflow_pattern))
    return (bool(rule.mailbox_id), bool(rule.direction), exact_workflow, rule.keep_days)


def _matches(rule: RetentionRule, message: Message) -> bool:
    return (
        (not rule.mailbox_id or rule.mailbox_id == message.mailbox_id)
        and (not rule.direction or rule.direction == message.direction)
        and fnmatch.fnmatchcase(message.workflow_id, rule.workflow_pattern or "*")
    )


def enabled_rules() -> list[RetentionRule]:
    return list(RetentionRule.objects.filter(enabled=True))


def rule_for(message: Message, rules: list[RetentionRule] | None = None) -> RetentionRule | None:
    """The rule governing a message: the most specific that matches, then the longest-keeping."""
    matching = [r for r in (enabled_rules() if rules is None else rules) if _matches(r, message)]
    return max(matching, key=_specificity, default=None)


def retention_start(message: Message, rule: RetentionRule) -> datetime | None:
    """When the rule's clock started for this message; None while it has not (never purged)."""
    if rule.clock == RetentionRule.Clock.CONFIRMED:
        if message.payload_confirmed_at:
            return message.payload_confirmed_at
        if message.direction == Direction.OUTBOUND and message.status == Status.ACKNOWLEDGED:
            return message.acknowledged_at  # the recipient downloaded it: delivered
        return None
    if message.direction == Direction.INBOUND:
        return message.received_at if message.status == Status.ACKNOWLEDGED else None
    if message.status in (Status.ACCEPTED, Status.ACKNOWLEDGED):
        return message.accepted_at
    return None


def active_hold(message: Message) -> LegalHold | None:
    return (
        LegalHold.objects.active()
        .filter(Q(message=message) | Q(message__isnull=True, workflow_id=message.workflow_id))
        .select_related("created_by")
        .first()
    )


@dataclass
class Retention:
    text: str
    purge_after: datetime | None = None
    rule: RetentionRule | None = None
    hold: LegalHold | None = None


def payload_retention(message: Message) -> Retention | None:
    """What the message page says: when the payload will go, or why it is kept."""
    if message.payload_purged_at:
        return Retention(
            f"Purged {message.payload_purged_at:%d %b %Y %H:%M} under rule "
            f"“{message.payload_purge_rule}”; the message's details and history are kept."
        )
    if not message.payload:
        return None
    if hold := active_hold(message):
        on = "this message" if hold.message_id else f"workflow {hold.workflow_id}"
        who = hold.created_by.get_username() if hold.created_by else "someone"
        return Retention(
            f"Kept: legal hold on {on} since {hold.created_at:%d %b %Y} by {who} ({hold.reason}).",
            hold=hold,
        )
    rule = rule_for(message)
    if rule is None:
        return Retention("Kept: no retention rule applies to this message.")
    start = retention_start(message, rule)
    if start is None:
        waiting = (
            "delivery is confirmed"
            if rule.clock == RetentionRule.Clock.CONFIRMED
            else (
                "it is acknowledged to MESH"
                if message.direction == Direction.INBOUND
                else "MESH accepts it"
            )
        )
        return Retention(
            f"Kept until {rule.keep_days} days after {waiting} (rule “{rule.name}”); not yet.",
            rule=rule,
        )
    purge_after = start + timedelta(days=rule.keep_days)
    return Retention(
        f"Will be purged after {purge_after:%d %b %Y %H:%M} (rule “{rule.name}”: "
        f"{rule.keep_days} days after {rule.get_clock_display().lower().removeprefix('after ')}).",
        purge_after=purge_after,
        rule=rule,
    )


def _due(rule: RetentionRule, now: datetime):
    """Messages with a stored payload that this rule may purge now (before the governing-rule
    check, which needs every rule)."""
    cutoff = now - timedelta(days=rule.keep_days)
    rows = Message.objects.exclude(payload="").filter(payload_purged_at__isnull=True)
    if rule.mailbox_id:
        rows = rows.filter(mailbox_id=rule.mailbox_id)
    if rule.direction:
        rows = rows.filter(direction=rule.direction)
    pattern = rule.workflow_pattern or "*"
    if not (_WILDCARDS & set(pattern)):
        rows = rows.filter(workflow_id=pattern)
    elif prefix := pattern.split("*")[0].split("?")[0].split("[")[0]:
        rows = rows.filter(workflow_id__startswith=prefix)
    if rule.clock == RetentionRule.Clock.CONFIRMED:
        rows = rows.filter(
            Q(payload_confirmed_at__lte=cutoff)
            | Q(
                payload_confirmed_at__isnull=True,
                direction=Direction.OUTBOUND,
                status=Status.ACKNOWLEDGED,
                acknowledged_at__lte=cutoff,
            )
        )
    else:
        rows = rows.filter(
            Q(direction=Direction.INBOUND, status=Status.ACKNOWLEDGED, received_at__lte=cutoff)
            | Q(
                direction=Direction.OUTBOUND,
                status__in=[Status.ACCEPTED, Status.ACKNOWLEDGED],
                accepted_at__lte=cutoff,
            )
        )
    holds = LegalHold.objects.active()
    return rows.exclude(pk__in=holds.filter(message__isnull=False).values("message_id")).exclude(
        workflow_id__in=holds.filter(message__isnull=True).values("workflow_id")
    )


def purgeable(rule: RetentionRule | None = None, now: datetime | None = None) -> Iterator[tuple]:
    """(message, rule) for every payload due to be purged now, governed by that rule; in batches."""
    now = now or timezone.now()
    rules = enabled_rules()
    for current in [rule] if rule is not None else rules:
        last_pk = 0
        while batch := list(_due(current, now).filter(pk__gt=last_pk).order_by("pk")[:BATCH]):
            for message in batch:
                if _matches(current, message) and rule_for(message, rules) == current:
                    yield message, current
            last_pk = batch[-1].pk


@transaction.atomic
def payload_purge(*, message_id: int, rule: RetentionRule, now: datetime | None = None) -> bool:
    """Purge one payload under `rule` if it still may be purged. The payload is removed inside the
    transaction that records it: if removing fails nothing is recorded, and a removal whose record
    did not commit is done again (harmlessly) by the next sweep."""
    now = now or timezone.now()
    message = (
        Message.objects.select_for_update()
        .filter(pk=message_id, payload_purged_at__isnull=True)
        .exclude(payload="")
        .first()
    )
    if message is None or active_hold(message) is not None:
        return False
    start = retention_start(message, rule)
    if start is None or start + timedelta(days=rule.keep_days) > now:
        return False
    name = message.payload.name
    Message.objects.filter(pk=message.pk).update(
        payload="", payload_purged_at=now, payload_purge_rule=rule.name
    )
    detail = (
        f"Payload purged under rule “{rule.name}” ({rule.keep_days} days after "
        f"{rule.get_clock_display().lower().removeprefix('after ')}); {message.size_bytes} bytes, "
        f"sha256 {message.payload_sha256}"
    )
    message.add_event(Kind.PURGED, detail)
    record(actor=Actor.worker(), action="message.payload_purged", obj=message, detail=detail)
    payloads.delete_payload(name)
    return True


def retention_sweep(*, dry_run: bool = False, rule: RetentionRule | None = None) -> dict:
    """Purge (or, dry, list) every payload due. One payload that cannot be removed never stops
    the rest: it is counted and named, and tried again at the next sweep."""
    purged, would, failed = 0, [], []
    for message, governing in purgeable(rule):
        if dry_run:
            would.append((message, governing))
            continue
        try:
            if payload_purge(message_id=message.pk, rule=governing):
                purged += 1
        except OSError as exc:
            failed.append(f"message {message.pk}: {type(exc).__name__}: {exc}")
    return {"purged": purged, "would_purge": would, "failed": failed}


@transaction.atomic
def legal_hold_place(
    *, reason: str, message: Message | None = None, workflow_id: str = "", actor: Actor = SYSTEM
) -> LegalHold:
    if not reason.strip():
        raise ValueError("A legal hold needs a reason.")
    if message is not None:
        Message.objects.select_for_update().filter(pk=message.pk).first()  # waits for a purge
    hold = LegalHold.objects.create(
        message=message,
        workflow_id="" if message else workflow_id.strip(),
        reason=reason.strip(),
        created_by=actor.user,
    )
    _audit_hold(hold, "message.legal_hold_placed", actor)
    if message is not None:
        message.add_event(Kind.HOLD, f"Legal hold placed: {hold.reason}", actor=hold.created_by)
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, actor: Actor = SYSTEM) -> LegalHold:
    hold.released_at = timezone.now()
    hold.released_by = actor.user
    hold.save(update_fields=["released_at", "released_by"])
    _audit_hold(hold, "message.legal_hold_released", actor)
    if hold.message_id:
        hold.message.add_event(Kind.HOLD, "Legal hold released", actor=hold.released_by)
    return hold


def _audit_hold(hold: LegalHold, action: str, actor: Actor) -> None:
    target = hold.message if hold.message_id else hold
    record(actor=actor, action=action, obj=target, detail=f"{hold}: {hold.reason}")
