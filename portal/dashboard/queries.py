"""Reads for the dashboard and the mailbox list: a fixed number of queries however many rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import CharField, Count, F, Func, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from portal.certificates.models import WARN_WITHIN_DAYS, Certificate
from portal.mailboxes.models import Environment, Mailbox
from portal.messaging.models import INBOX_EXPIRY, Direction, Message, Status

# An inbound message still unacknowledged this long is flagged: MESH gives up on it at 5 days.
UNACKNOWLEDGED_WARN_AFTER = timedelta(days=3)
ENVIRONMENT_RANK = {Environment.LIVE: 0, Environment.DEPLOYMENT: 1, Environment.INTEGRATION: 2}


def with_health(queryset: QuerySet) -> QuerySet:
    """Annotate the active certificate's expiry and the oldest unacknowledged inbound message."""
    active = Certificate.objects.filter(mailbox=OuterRef("pk"), status=Certificate.Status.ACTIVE)
    unacknowledged = (
        Message.objects.filter(
            mailbox=OuterRef("pk"), direction=Direction.INBOUND, status=Status.RECEIVED
        )
        .annotate(since=Coalesce("received_at", "created_at"))
        .order_by("since")
    )
    return queryset.annotate(
        certificate_not_after=Subquery(active.order_by("-not_after").values("not_after")[:1]),
        oldest_unacknowledged_at=Subquery(unacknowledged.values("since")[:1]),
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
    mailbox.reasons = reasons
    return mailbox


def dashboard_mailboxes(now: datetime) -> list[Mailbox]:
    """Every mailbox with its health; those needing attention first, then live before the rest."""
    rows = [describe_health(m, now) for m in with_health(Mailbox.objects.for_dashboard())]
    rows.sort(key=lambda m: (not m.reasons, ENVIRONMENT_RANK.get(m.environment, 3), m.mailbox_id))
    return rows


def _local_day(field: str):
    """The local calendar day of a datetime column, computed by the database.

    On SQLite, Django's TruncDate calls back into Python for every row; SQLite's own date() with
    'localtime' does the same in C (Django sets the process time zone to TIME_ZONE).
    """
    if connection.vendor == "sqlite":
        return Func(F(field), Value("localtime"), function="date", output_field=CharField())
    return TruncDate(field)


def daily_volume(now: datetime, days: int = 30) -> tuple[date, dict[tuple[date, str], int]]:
    """Messages per local day and direction for the last `days` days: one aggregate query."""
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), time.min))
    rows = (
        Message.objects.filter(created_at__gte=start)
        .annotate(day=_local_day("created_at"))
        .values("day", "direction")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(row["day"])
        counts[(day, row["direction"])] = row["n"]
    return today, counts
