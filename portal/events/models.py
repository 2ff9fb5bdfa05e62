"""Events: durable records of what happened, read by consumers in commit order.

An event is inserted with `seq` NULL, inside the transaction that made the change it reports, so it
exists only if that change commits. Publishing (services.events_publish) then gives `seq`s to the
committed, unpublished rows in id order, one publisher at a time under the `EventHead` row lock.
So `seq` order is commit order: a consumer that has read every event up to `seq` N can never later
find a new event below N, however late the transaction that inserted it committed.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .kinds import Severity


class EventQuerySet(models.QuerySet):
    def published(self):
        return self.filter(seq__isnull=False)

    def after(self, seq: int):
        """Published events after a consumer's cursor, in commit order."""
        return self.filter(seq__gt=seq).order_by("seq")

    def for_problem(self, problem_key: str):
        return self.filter(problem_key=problem_key).order_by("-id")

    def open_problems(self):
        """Events that raised a problem not (yet) resolved: the newest of their key, not a fix."""
        newer = self.model.objects.filter(
            problem_key=OuterRef("problem_key"), id__gt=OuterRef("id")
        )
        return self.exclude(problem_key="").filter(resolves=False).exclude(Exists(newer))


class Event(models.Model):
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    summary = models.CharField(max_length=500)
    # Plain ids, not foreign keys: events sit below the apps whose rows they name.
    mailbox_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    workflow = models.CharField(max_length=300, blank=True)
    problem_key = models.CharField(max_length=200, blank=True)
    resolves = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The publisher: unpublished rows in id order.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="events_unpublished"),
            # Is this problem open? (the newest event of a problem key).
            models.Index(fields=["problem_key", "-id"], name="events_problem"),
            # The purge: old events first.
            models.Index(fields=["created_at"], name="events_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.severity}) #{self.seq or 'unpublished'}"


class EventHead(models.Model):
    """One row: the last `seq` given. The publisher locks it so seqs never interleave."""

    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"events published to #{self.last_seq}"


class EventCursor(models.Model):
    """How far one consumer has read, and its failing handler, if any."""

    name = models.CharField(max_length=100, unique=True)
    last_seq = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    # Events given up on after too many failures, so one bad event never stops the rest.
    skipped = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at #{self.last_seq}"
