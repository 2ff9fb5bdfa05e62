"""Alerts from events: match rules, fold repeats of an open problem, notify, resolve.

`alert_handle_event` is the events consumer (portal.events.consumers): it runs in the transaction
that moves the alerts cursor, so each event makes its alert and notifications exactly once. It only
writes rows; the workers send them (`notification_send`), retrying with backoff, and a channel that
keeps failing is marked failing (shown on every page to the people who manage alerts).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.audit.services import Actor, record
from portal.events.kinds import SEVERITY_ORDER, Severity

from . import delivery, render
from .enqueue import enqueue_send
from .models import Alert, Channel, Notification, Rule

log = logging.getLogger(__name__)
Status, Purpose = Notification.Status, Notification.Purpose
MAX_ATTEMPTS = 5
CLAIM_LEASE = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def _rules_for(event) -> list[Rule]:
    rules = Rule.objects.filter(enabled=True).prefetch_related("channels")
    return [rule for rule in rules if rule.matches(event)]


def alert_handle_event(event) -> Alert | None:
    """The events consumer. Returns the alert made or updated, if any."""
    if event.resolves:
        return _resolve(event)
    rules = _rules_for(event)
    inbox_worthy = SEVERITY_ORDER.index(event.severity) >= SEVERITY_ORDER.index(Severity.WARNING)
    if event.problem_key:
        existing = Alert.objects.open().filter(problem_key=event.problem_key).first()
        if existing is not None:
            Alert.objects.filter(pk=existing.pk).update(repeats=F("repeats") + 1)
            return existing
    if not rules and not inbox_worthy:
        return None
    alert = Alert.objects.create(
        event_seq=event.seq,
        kind=event.kind,
        severity=event.severity,
        summary=event.summary,
        problem_key=event.problem_key,
        mailbox_id=event.mailbox_id,
        message_id=event.message_id,
        workflow=event.workflow,
        data=event.data,
        created_at=event.created_at,
    )
    for channel, digest in _channels(rules).items():
        _notify(alert, channel, Purpose.ALERT, digest=digest)
    return alert


def _channels(rules: list[Rule]) -> dict[Channel, bool]:
    """Each enabled channel once; at once if any rule wants it at once, else in the digest."""
    found: dict[Channel, bool] = {}
    for rule in rules:
        for channel in rule.channels.all():
            if channel.enabled:
                found[channel] = found.get(channel, True) and rule.digest
    return found


def _resolve(event) -> Alert | None:
    alert = Alert.objects.open().filter(problem_key=event.problem_key).first()
    if alert is None:
        return None
    alert.resolved_at, alert.resolved_summary = timezone.now(), event.summary
    alert.save(update_fields=["resolved_at", "resolved_summary"])
    told_ids = (
        Notification.objects.filter(alert=alert, purpose=Purpose.ALERT)
        .exclude(status=Status.DIGEST)
        .values("channel_id")
    )
    told = Channel.objects.filter(pk__in=told_ids, enabled=True)
    for channel in told:
        _notify(alert, channel, Purpose.RESOLVED)
    return alert


def _notify(
    alert: Alert | None, channel: Channel, purpose: str, *, digest: bool = False
) -> Notification:
    notification = Notification.objects.create(
        alert=alert,
        channel=channel,
        purpose=purpose,
        status=Status.DIGEST if digest else Status.PENDING,
    )
    if not digest:
        transaction.on_commit(lambda: _enqueue(notification.pk))
    return notification


def _enqueue(notification_pk: int) -> None:
    try:
        enqueue_send(notification_pk)
    except Exception as exc:  # noqa: BLE001 - the sweep sends it instead
        log.warning("Could not enqueue alert notification %s: %s", notification_pk, exc)


def _claim(notification_pk: int, now) -> Notification | None:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if (
        not Notification.objects.filter(pk=notification_pk, status=Status.PENDING)
        .filter(due)
        .update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    ):
        return None
    return Notification.objects.select_related("channel", "alert").get(pk=notification_pk)


def notification_send(*, notification_id: int, now=None) -> str:
    """Send one pending notification if it is due and this worker claims it; safe to run twice."""
    now = now or timezone.now()
    notification = _claim(notification_id, now)
    if notification is None:
        return "not-claimed"
    try:
        delivery.deliver(notification.channel, _content(notification), notification.alert)
    except delivery.DeliveryFailed as exc:
        return _failed(notification, str(exc), now)
    except Exception as exc:  # noqa: BLE001 - every attempt ends in a recorded outcome
        log.error("Alert notification %s failed: %s", notification.pk, type(exc).__name__)
        return _failed(notification, f"NeoMesh could not send it ({type(exc).__name__})", now)
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
            status=Status.SENT, sent_at=timezone.now(), last_error="", claimed_at=None
        )
        Channel.objects.filter(pk=notification.channel_id).update(
            failing_since=None, last_error="", last_sent_at=timezone.now()
        )
        record(
            actor=Actor.worker(),
            action="alert.sent",
            obj=notification.channel,
            detail=f"{notification.get_purpose_display()} sent: {_content(notification).title[:200]}",
        )
    return Status.SENT


def _content(notification: Notification) -> render.Content:
    if notification.purpose == Purpose.TEST:
        return render.Content(
            "test",
            "Test alert from NeoMesh",
            [
                {
                    "severity": "Information",
                    "summary": "This is a test alert: this channel works.",
                    "kind": "alerts.test",
                    "what": "",
                    "at": notification.created_at,
                    "repeats": 0,
                    "resolved": "",
                }
            ],
            render.inbox_link(),
        )
    return render.for_alert(notification.alert, notification.purpose)


def _failed(notification: Notification, reason: str, now) -> str:
    give_up = notification.attempts >= MAX_ATTEMPTS
    status = Status.FAILED if give_up else Status.PENDING
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
            status=status,
            last_error=reason[:2000],
            claimed_at=None,
            next_attempt_at=None if give_up else now + retry_delay(notification.attempts),
        )
        channel = Channel.objects.filter(pk=notification.channel_id)
        channel.update(last_error=reason[:2000])
        if give_up:
            channel.filter(failing_since__isnull=True).update(failing_since=now)
        record(
            actor=Actor.worker(),
            action="alert.failed" if give_up else "alert.retry",
            obj=notification.channel,
            detail=f"Attempt {notification.attempts} of {MAX_ATTEMPTS}: {reason}",
        )
    return status


def notifications_sweep(*, now=None) -> dict[str, int]:
    """Release claims of dead workers and enqueue every due notification (every minute)."""
    now = now or timezone.now()
    released = Notification.objects.filter(
        status=Status.SENDING, claimed_at__lt=now - CLAIM_LEASE
    ).update(status=Status.PENDING, claimed_at=None)
    due = Notification.objects.filter(status=Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    pks = list(due.values_list("pk", flat=True)[:500])
    for pk in pks:
        _enqueue(pk)
    return {"released": released, "enqueued": len(pks)}


def digests_send(*, now=None) -> int:
    """Daily: one message per channel with every alert waiting for its digest."""
    now = now or timezone.now()
    sent = 0
    for channel in Channel.objects.filter(notifications__status=Status.DIGEST).distinct():
        waiting = list(
            Notification.objects.filter(channel=channel, status=Status.DIGEST)
            .select_related("alert")
            .order_by("created_at")
        )
        content = render.for_digest([n.alert for n in waiting if n.alert is not None])
        try:
            delivery.deliver(channel, content)
        except delivery.DeliveryFailed as exc:
            # Kept waiting for tomorrow's digest; the channel shows the failure meanwhile.
            Channel.objects.filter(pk=channel.pk).update(last_error=str(exc)[:2000])
            Channel.objects.filter(pk=channel.pk, failing_since__isnull=True).update(
                failing_since=now
            )
            record(
                actor=Actor.worker(),
                action="alert.failed",
                obj=channel,
                detail=f"Daily digest: {exc}",
            )
            continue
        with transaction.atomic():
            Notification.objects.filter(pk__in=[n.pk for n in waiting]).update(
                status=Status.SENT, sent_at=now
            )
            Channel.objects.filter(pk=channel.pk).update(
                failing_since=None, last_error="", last_sent_at=now
            )
            record(
                actor=Actor.worker(),
                action="alert.sent",
                obj=channel,
                detail=f"Daily digest of {len(waiting)} alert(s)",
            )
        sent += 1
    return sent


@transaction.atomic
def channel_send_test(*, channel: Channel, request=None) -> Notification:
    """A person's "send a test alert": queued like any other, so it shows what the workers do."""
    notification = _notify(None, channel, Purpose.TEST)
    if request is not None:
        record(actor=Actor.person(request), action="alert.test_requested", obj=channel)
    return notification


@transaction.atomic
def alert_acknowledge(*, alert: Alert, request) -> None:
    Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=request.user
    )
    record(actor=Actor.person(request), action="alert.acknowledged", obj=alert)


@transaction.atomic
def alert_snooze(*, alert: Alert, hours: int, request) -> None:
    until = timezone.now() + timedelta(hours=hours)
    Alert.objects.filter(pk=alert.pk).update(snoozed_until=until)
    record(
        actor=Actor.person(request),
        action="alert.snoozed",
        obj=alert,
        detail=f"for {hours} hour(s)",
    )


def channels_failing():
    return Channel.objects.filter(enabled=True, failing_since__isnull=False)


def default_rules_ensure(*, admin_emails: list[str]) -> Rule | None:
    """The demo seed's default: every error (or worse) to the admins' email."""
    if not admin_emails:
        return None
    channel, _ = Channel.objects.get_or_create(
        name="Admins' email",
        defaults={"kind": Channel.Kind.EMAIL, "recipients": "\n".join(admin_emails)},
    )
    rule, created = Rule.objects.get_or_create(
        name="All errors to the admins", defaults={"min_severity": Severity.ERROR}
    )
    if created:
        rule.channels.add(channel)
    return rule
