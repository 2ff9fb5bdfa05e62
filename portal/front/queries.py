"""Reads for the dashboard and the mailbox list: a fixed number of queries however many rows."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db.models import (
    CharField,
    Count,
    Exists,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.utils import timezone

from portal.accounts import reach
from portal.certificates.models import WARN_WITHIN_DAYS, Certificate
from portal.integrations.models import Delivery
from portal.mailboxes.models import Environment, Mailbox
from portal.messaging.models import INBOX_EXPIRY, Direction, InboundFailure, Message, Status

# An inbound message still unacknowledged this long is flagged: MESH gives up on it at 5 days.
UNACKNOWLEDGED_WARN_AFTER = timedelta(days=3)
ENVIRONMENT_RANK = {Environment.LIVE: 0, Environment.DEPLOYMENT: 1, Environment.INTEGRATION: 2}


def with_health(queryset: QuerySet) -> QuerySet:
    """Annotate the current certificate's expiry and the oldest unacknowledged inbound message."""
    # Active, or expired and not replaced: an expired certificate says "Certificate expired".
    active = Certificate.objects.current().filter(mailbox=OuterRef("pk"))
    # Ordered by created_at (set when the message is stored, as received_at is), so an index
    # supplies the order: sorting by received_at instead costs seconds on a million rows.
    unacknowledged = Message.objects.filter(
        mailbox=OuterRef("pk"), direction=Direction.INBOUND, status=Status.RECEIVED
    ).order_by("created_at")
    # Inbound messages held for a person after failures (portal.messaging.quarantine).
    quarantined = (
        InboundFailure.objects.needing_a_person()
        .filter(mailbox=OuterRef("pk"))
        .order_by()
        .values("mailbox")
        .annotate(n=Count("pk"))
        .values("n")
    )
    # Deliveries onwards that gave up and wait for a person (portal.integrations). Read from the
    # dead letters (few, by the state index), each message checked by id: joined the other way,
    # SQLite read every message of the mailbox for its deliveries (130 ms at a million messages).
    of_mailbox = Message.objects.filter(pk=OuterRef("message_id"), mailbox=OuterRef(OuterRef("pk")))
    dead_letters = (
        Delivery.objects.dead_letters()
        .filter(Exists(of_mailbox))
        .order_by()
        .annotate(n=Func("pk", function="COUNT"))  # one count, no GROUP BY
        .values("n")
    )
    return queryset.annotate(
        dead_letters=Subquery(dead_letters[:1], output_field=IntegerField()),
        certificate_not_after=Subquery(active.order_by("-not_after").values("not_after")[:1]),
        oldest_unacknowledged_at=Subquery(unacknowledged.values("created_at")[:1]),
        quarantined_inbound=Subquery(quarantined[:1], output_field=IntegerField()),
    )


def describe_health(mailbox: Mailbox, now: datetime) -> Mailbox:
    """Attach what the pages show: days left, the 5-day deadline, and every reason for attention."""
    not_after = getattr(mailbox, "certificate_not_after", None)
    mailbox.certificate_days_left = (not_after - now).days if not_after else None
    oldest = getattr(mailbox, "oldest_unacknowledged_at", None)
    mailbox.unacknowledged_deadline = oldest + INBOX_EXPIRY if oldest else None
    mailbox.unacknowledged_overdue = bool(oldest and now - oldest >= UNACKNOWLEDGED_WARN_AFTER)
    reasons = mailbox.attention_reasons(now)
    days = mailbox.certificate_days_left
    if days is None and mailbox.environment != Environment.SANDBOX:
        reasons.append("No active certificate")
    elif days is not None and days < 0:
        reasons.append("Certificate expired")
    elif days is not None and days <= WARN_WITHIN_DAYS:
        reasons.append(f"Certificate expires in {days} days")
    if mailbox.unacknowledged_overdue:
        reasons.append("Inbound message unacknowledged for over 3 days (MESH removes it at 5)")
    quarantined = getattr(mailbox, "quarantined_inbound", None) or 0
    if quarantined:
        reasons.append(
            f"{quarantined} inbound message{'s' if quarantined > 1 else ''} quarantined after "
            "failures: retry or leave in MESH on the mailbox page"
        )
    dead = getattr(mailbox, "dead_letters", None) or 0
    if dead:
        reasons.append(
            f"{dead} deliver{'ies' if dead > 1 else 'y'} onwards dead-lettered: fix the destination, "
            "then replay"
        )
    mailbox.reasons = reasons
    mailbox.checking = not reasons and mailbox.is_being_checked(now)
    return mailbox


def dashboard_mailboxes(now: datetime, user) -> list[Mailbox]:
    """Every mailbox within reach with its health; attention first, then live before the rest."""
    mailboxes = Mailbox.objects.within_reach(user).for_dashboard()
    rows = [describe_health(m, now) for m in with_health(mailboxes)]
    rows.sort(key=lambda m: (not m.reasons, ENVIRONMENT_RANK.get(m.environment, 3), m.mailbox_id))
    return rows


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# Past days' counts change only when messages are removed: kept this long, then counted again.
PAST_DAYS_CACHE_SECONDS = 3600


def daily_volume(now: datetime, user, days: int = 30) -> tuple[date, dict[tuple[date, str], int]]:
    """Messages of `user`'s reach per local day and direction for the last `days` days.

    Today is counted on every call; the days before it are counted once an hour and kept in the
    cache (Redis when configured, so every host shares them): at 10,000,000 messages counting 30
    days takes seconds, today alone a few milliseconds. Each reach has its own cached counts
    (everything, or one set of mailboxes), so one person's counts never show another's traffic.
    """
    today = timezone.localdate(now)
    mailboxes = (
        None
        if reach.sees_everything(user)
        else sorted(reach.mailboxes_for(user).values_list("pk", flat=True))
    )
    scope = (
        "all" if mailboxes is None else hashlib.sha256(repr(mailboxes).encode()).hexdigest()[:16]
    )
    key = f"dashboard:daily-volume:{today.isoformat()}:{days}:{scope}"
    past = cache.get(key)
    if past is None:
        past = _count_days([today - timedelta(days=n) for n in range(days - 1, 0, -1)], mailboxes)
        cache.set(key, past, PAST_DAYS_CACHE_SECONDS)
    return today, past | _count_days([today], mailboxes)


def _count_days(days: list[date], mailboxes: list[int] | None) -> dict[tuple[date, str], int]:
    """Messages per local day and direction, in one query.

    One COUNT(*) per day and direction over an index range, joined with UNION ALL: each is a short
    index scan with no per-row date arithmetic and no GROUP BY sort, several times faster than
    grouping a million rows by a computed day. Local midnights keep days right across DST changes.
    """
    if not days:
        return {}
    parts = []
    for offset, day in enumerate(days):
        start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
        for direction in Direction.values:
            rows = Message.objects.filter(
                direction=direction, created_at__gte=start, created_at__lt=end
            )
            if mailboxes is not None:
                rows = rows.filter(mailbox__in=mailboxes)
            parts.append(
                rows.order_by()
                .values(offset=Value(offset, IntegerField()), way=Value(direction, CharField()))
                .annotate(n=Count("*"))  # COUNT(*): PostgreSQL answers from the index alone
            )
    counts = {}
    for row in parts[0].union(*parts[1:], all=True):
        counts[(days[row["offset"]], row["way"])] = row["n"]
    return counts
