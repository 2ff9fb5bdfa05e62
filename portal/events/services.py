"""Raising, publishing, dispatching and purging events (see models.py for the ordering guarantee)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, Min, Value, When
from django.utils import timezone

from . import consumers
from .kinds import KINDS, Severity
from .models import Event, EventCursor, EventHead

log = logging.getLogger(__name__)
MAX_DATA_BYTES = 8 * 1024
MAX_TEXT = 1000


class EventRejected(ValueError):
    """An event that breaks the rules (unknown kind or severity); a programming error."""


def _bounded(value, depth: int = 0):
    """Data as plain JSON: strings cut to MAX_TEXT, nesting to 3 levels, nothing else odd."""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= 3:
        return str(value)[:MAX_TEXT]
    if isinstance(value, dict):
        return {str(k)[:100]: _bounded(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth + 1) for v in list(value)[:50]]
    return str(value)[:MAX_TEXT]


def _clean_data(data: dict | None) -> dict:
    cleaned = _bounded(dict(data or {}))
    if len(json.dumps(cleaned, default=str)) > MAX_DATA_BYTES:
        return {"truncated": True}
    return cleaned


def event_emit(
    *,
    kind: str,
    severity: str,
    summary: str,
    mailbox_id: int | None = None,
    message_id: int | None = None,
    workflow: str = "",
    problem_key: str = "",
    resolves: bool = False,
    data: dict | None = None,
) -> Event:
    """Record an event in the caller's transaction; it is published after that commits.

    Call it inside the transaction that makes the change the event reports: if that rolls back,
    the event never existed. `problem_key` names a problem (`mailbox:3:poll`); an event with
    `resolves=True` says that problem is over.
    """
    if kind not in KINDS:
        raise EventRejected(f"Unknown event kind {kind!r}: add it to portal/events/kinds.py")
    if severity not in Severity.values:
        raise EventRejected(f"Unknown severity {severity!r}")
    event = Event.objects.create(
        kind=kind,
        severity=severity,
        summary=" ".join(str(summary).split())[:500],
        mailbox_id=mailbox_id,
        message_id=message_id,
        workflow=(workflow or "")[:300],
        problem_key=(problem_key or "")[:200],
        resolves=resolves,
        data=_clean_data(data),
    )
    transaction.on_commit(_publish_after_commit)
    return event


def problem_is_open(problem_key: str) -> bool:
    """Whether the newest event of this problem raised it (rather than resolved it)."""
    latest = Event.objects.for_problem(problem_key).values_list("resolves", flat=True).first()
    return latest is False


def problems_open(problem_keys) -> set[str]:
    """Which of these problems are open (`problem_is_open` for many keys, in one query)."""
    latest: dict[str, bool] = {}
    rows = Event.objects.filter(problem_key__in=list(problem_keys)).order_by("id")
    for key, resolves in rows.values_list("problem_key", "resolves"):
        latest[key] = resolves
    return {key for key, resolves in latest.items() if resolves is False}


def problem_raise(*, problem_key: str, **event) -> Event | None:
    """Emit the event unless this problem is already open: one event per problem."""
    if problem_is_open(problem_key):
        return None
    return event_emit(problem_key=problem_key, **event)


def problem_resolve(*, problem_key: str, **event) -> Event | None:
    """Emit the resolving event only if this problem is open."""
    if not problem_is_open(problem_key):
        return None
    return event_emit(problem_key=problem_key, resolves=True, **event)


def _publish_after_commit() -> None:
    # After the caller's commit: a failure here must not fail the caller, whose change is made.
    # The scheduled dispatch publishes whatever is left.
    try:
        events_publish()
    except Exception as exc:  # noqa: BLE001
        log.warning("Publishing events after commit failed (the next run catches up): %s", exc)


def events_publish(*, batch: int = 1000) -> int:
    """Give seqs to committed, unpublished events in id order; returns how many were published."""
    total = 0
    while True:
        published = _publish_batch(batch)
        total += published
        if published < batch:
            return total


@transaction.atomic
def _publish_batch(batch: int) -> int:
    head = _locked_head()
    ids = list(
        Event.objects.filter(seq__isnull=True).order_by("id").values_list("id", flat=True)[:batch]
    )
    if not ids:
        return 0
    seqs = {pk: head.last_seq + n for n, pk in enumerate(ids, start=1)}
    # One statement for the batch: each event its seq, in id order.
    Event.objects.filter(pk__in=ids).update(
        seq=Case(*(When(pk=pk, then=Value(seq)) for pk, seq in seqs.items())),
        published_at=timezone.now(),
    )
    EventHead.objects.filter(pk=head.pk).update(last_seq=head.last_seq + len(ids))
    return len(ids)


def _locked_head() -> EventHead:
    try:
        with transaction.atomic():
            head, _ = EventHead.objects.select_for_update().get_or_create(pk=1)
    except IntegrityError:  # another publisher created it first
        head = EventHead.objects.select_for_update().get(pk=1)
    return head


def events_dispatch(*, batch: int = 200, now=None) -> dict[str, int]:
    """Publish, then hand each registered consumer its new events. Returns events handled each."""
    events_publish()
    return {c.name: consumer_run(consumer=c, batch=batch, now=now) for c in consumers.registered()}


def _cursor(consumer: consumers.Consumer) -> EventCursor:
    start = 0 if consumer.from_start else _head_seq()
    try:
        with transaction.atomic():
            cursor, _ = EventCursor.objects.get_or_create(
                name=consumer.name, defaults={"last_seq": start}
            )
    except IntegrityError:
        cursor = EventCursor.objects.get(name=consumer.name)
    return cursor


def _head_seq() -> int:
    return EventHead.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0


def consumer_run(*, consumer: consumers.Consumer, batch: int = 200, now=None) -> int:
    """One pass of one consumer over up to `batch` events; returns how many it handled."""
    now = now or timezone.now()
    cursor = _cursor(consumer)
    if cursor.retry_at and cursor.retry_at > now:
        return 0
    with transaction.atomic():
        cursor = EventCursor.objects.select_for_update().get(pk=cursor.pk)
        if cursor.retry_at and cursor.retry_at > now:
            return 0  # another worker failed meanwhile
        handled = 0
        for event in Event.objects.after(cursor.last_seq)[:batch]:
            if consumer.wants(event):
                if not _handle(consumer, cursor, event, now):
                    break
                handled += 1
            cursor.last_seq = event.seq
        cursor.save()
    return handled


def _handle(consumer: consumers.Consumer, cursor: EventCursor, event: Event, now) -> bool:
    """Run the handler in a savepoint. False: stop here and retry this event later."""
    try:
        with transaction.atomic():
            consumer.handler(event)
    except Exception as exc:  # noqa: BLE001 - a failing handler is retried, never lost
        cursor.failures += 1
        cursor.last_error = f"event #{event.seq} ({event.kind}): {type(exc).__name__}: {exc}"[:2000]
        log.warning("Consumer %s failed on %s", consumer.name, cursor.last_error)
        if cursor.failures < settings.EVENTS_HANDLER_MAX_ATTEMPTS:
            delay = min(3600, 30 * 2 ** (cursor.failures - 1))
            cursor.retry_at = now + timedelta(seconds=delay)
            return False
        # Given up on this one (kept in `skipped` with its error): the cursor moves past it.
        cursor.skipped = [*cursor.skipped, {"seq": event.seq, "error": cursor.last_error}][-100:]
        cursor.failures, cursor.retry_at = 0, None
        return True
    cursor.failures, cursor.retry_at, cursor.last_error = 0, None, ""
    return True


def events_purge(*, now=None) -> int:
    """Delete published events older than EVENTS_RETENTION_DAYS that every consumer has read.

    The newest event of a problem still open is kept: resolving it later needs to find it.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    old = Event.objects.published().filter(created_at__lt=cutoff)
    names = [c.name for c in consumers.registered()]
    read = EventCursor.objects.filter(name__in=names).aggregate(low=Min("last_seq"))["low"]
    if names and read is not None:
        old = old.filter(seq__lte=read)
    keep = Event.objects.open_problems().values("id")
    deleted = 0
    while ids := list(old.exclude(id__in=keep).values_list("id", flat=True)[:1000]):
        deleted += Event.objects.filter(id__in=ids).delete()[0]
    return deleted
