from __future__ import annotations

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone


class Heartbeat(models.Model):
    """Written by the worker's every-minute jobs; /healthz reads its age to see workers are alive."""

    name = models.CharField(max_length=50, unique=True)
    at = models.DateTimeField(default=timezone.now)
    by = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, name: str, by: str = "") -> None:
        cls.objects.update_or_create(name=name, defaults={"at": timezone.now(), "by": by[:200]})


class MessageCount(models.Model):
    """Running totals behind /metrics' counters, bumped in the transaction that moves a message.

    A scrape then reads a few rows however many messages there are, and no total ever goes down
    (a person re-queueing a failed message changes a gauge, never a counter).
    """

    class Event(models.TextChoices):
        MOVED = "moved", "Accepted by MESH (out) or downloaded from MESH (in)"
        FAILED = "failed", "Failed: rejected, undeliverable, or given up"

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=3)
    event = models.CharField(max_length=10, choices=Event.choices)
    code = models.CharField(max_length=20, blank=True)  # MESH's error code, for failures
    messages = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "direction", "event", "code"], name="ops_messagecount_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.direction} {self.event} {self.code}: {self.messages}"

    @classmethod
    def add(cls, message, event: str, code: str = "") -> None:
        """Count one message (and its bytes); call inside the transaction that changes it."""
        key = {"mailbox_id": message.mailbox_id, "direction": message.direction, "event": event,
               "code": (code or "")[:20]}  # fmt: skip
        size = message.size_bytes or 0
        bump = {"messages": F("messages") + 1, "bytes": F("bytes") + size}
        if cls.objects.filter(**key).update(**bump):
            return
        try:
            with transaction.atomic():
                cls.objects.create(**key, messages=1, bytes=size)
        except IntegrityError:  # another worker created the row first
            cls.objects.filter(**key).update(**bump)
