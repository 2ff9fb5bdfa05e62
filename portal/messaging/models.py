from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.functional import classproperty

from portal.accounts import reach

from .words import words_of

# MESH removes a message not acknowledged within 5 days and reports it undelivered to the sender.
INBOX_EXPIRY = timedelta(days=5)
# Tracking a sent message backs off (MESH: "do not poll this endpoint often"): 5 minutes after it
# is accepted, then 1 hour, 6 hours, then daily; the last look is just after MESH's 5-day expiry,
# when an uncollected message turns to error. A final state stops it (mesh-protocol.md 4.10).
TRACK_BACKOFF = (timedelta(minutes=5), timedelta(hours=1), timedelta(hours=6))
TRACK_DAILY = timedelta(days=1)
TRACK_UNTIL = INBOX_EXPIRY + timedelta(hours=1)
# A person's "Refresh now" on a message page: at most this often.
TRACK_NOW_EVERY = timedelta(minutes=5)


def next_track_at(*, accepted_at, tracked: int, last=None):
    """When to track a message accepted at `accepted_at`, tracked `tracked` times (last at `last`).

    None once the look after MESH's 5-day expiry has been made.
    """
    end = accepted_at + TRACK_UNTIL
    if last is not None and last >= end:
        return None
    step = TRACK_BACKOFF[tracked] if tracked < len(TRACK_BACKOFF) else TRACK_DAILY
    return min((last or accepted_at) + step, end)


def payload_storage():
    from django.core.files.storage import storages

    return storages["payloads"]


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageType(models.TextChoices):
    DATA = "DATA", "Data"
    REPORT = "REPORT", "Report"


class Status(models.TextChoices):
    # Outbound lifecycle: queued -> sending -> accepted -> acknowledged, or failed.
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    ACCEPTED = "accepted", "Accepted by MESH"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FAILED = "failed", "Failed"
    # Outbound, when the first upload's outcome is unknown and tracking could not settle it.
    UNCERTAIN = "uncertain", "Outcome unknown"
    # Inbound: stored locally, MESH acknowledgement still to be made.
    RECEIVED = "received", "Received, not yet acknowledged"

    @classproperty
    def in_flight(cls) -> list[str]:
        return [cls.QUEUED, cls.SENDING]


class MessageQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)

    def inbound(self):
        return self.filter(direction=Direction.INBOUND)

    def outbound(self):
        return self.filter(direction=Direction.OUTBOUND)

    def for_list(self):
        return self.select_related("mailbox").defer("mesh_status_description", "last_error")

    def sendable(self, now=None):
        """Queued outbound messages whose next attempt is due."""
        now = now or timezone.now()
        return (
            self.outbound()
            .filter(status=Status.QUEUED)
            .filter(models.Q(next_attempt_at__isnull=True) | models.Q(next_attempt_at__lte=now))
        )


class Message(models.Model):
    # Where the audit trail finds the mailbox of a record about a message (AuditRecord.within).
    audit_mailbox = "mailbox_id"

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.PROTECT, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.CharField(
        max_length=6, choices=MessageType.choices, default=MessageType.DATA
    )
    # Null until MESH assigns one (the unique constraint ignores nulls).
    mesh_message_id = models.CharField("MESH message id", max_length=100, null=True, blank=True)  # noqa: DJ001
    local_id = models.CharField("Local id", max_length=300, blank=True)
    workflow_id = models.CharField("Workflow id", max_length=300)
    sender = models.CharField(max_length=100, blank=True)
    recipient = models.CharField(max_length=100)
    subject = models.CharField(max_length=500, blank=True)
    filename = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    checksum = models.CharField(max_length=100, blank=True)
    compressed = models.BooleanField(default=False)
    encrypted = models.BooleanField(default=False)
    partner_id = models.CharField("Partner id", max_length=500, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    payload = models.FileField(storage=payload_storage, max_length=300, blank=True)
    payload_sha256 = models.CharField(max_length=64, blank=True)
    chunk_size = models.PositiveIntegerField(null=True, blank=True)
    # The sending mailbox's request limit when queued: every attempt cuts the same chunks with it.
    max_request_bytes = models.PositiveIntegerField(null=True, blank=True)
    # False for a recipient or workflow that cannot take chunked messages (checked when queued).
    chunking_allowed = models.BooleanField(default=True)
    # The recipient is a demographic address (an NHS number form), not a mailbox id: it is
    # patient-identifiable, so lists and the audit trail show it masked.
    demographic = models.BooleanField(default=False)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)

    status = models.CharField(max_length=20, choices=Status.choices)
    mesh_status_code = models.CharField(max_length=20, blank=True)
    mesh_status_event = models.CharField(max_length=50, blank=True)
    mesh_status_description = models.TextField(blank=True)
    failure_reason = models.TextField(
        blank=True, help_text="In plain English, with what to do next."
    )
    linked_message = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    linked_mesh_message_id = models.CharField(max_length=100, blank=True)
    # "Fix and resend": the failed message this one was copied from (reverse: `copies`).
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    # An inbound business acknowledgement (<WORKFLOW>_ACK): the message it acknowledges (acks.py).
    acknowledges = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="business_acks"
    )
    # When the overdue business acknowledgement was raised (once per message).
    business_ack_overdue_at = models.DateTimeField(null=True, blank=True)

    # Outbox work: claimed by one worker at a time, retried with backoff.
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    last_tracked_at = models.DateTimeField(null=True, blank=True)
    # Tracking backoff (next_track_at above): null when no more tracking is due.
    next_track_at = models.DateTimeField(null=True, blank=True)
    tracked_count = models.PositiveIntegerField(default=0)
    # Delivery onwards confirmed (the API's confirm, or a delivery, through
    # services.payload_confirm); retention keys on it. The payload purged under a rule
    # (portal.messaging.retention).
    payload_confirmed_at = models.DateTimeField(null=True, blank=True)
    payload_purged_at = models.DateTimeField(null=True, blank=True)
    payload_purge_rule = models.CharField(max_length=200, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A MESH message is stored once per mailbox and direction: a second poll, or a second
            # worker, that downloads it again fails here and only acknowledges.
            models.UniqueConstraint(
                fields=["mailbox", "direction", "mesh_message_id"],
                condition=models.Q(mesh_message_id__isnull=False),
                name="message_unique_mesh_id",
            )
        ]
        indexes = [
            # Message lists: per mailbox and direction, newest first.
            models.Index(
                fields=["mailbox", "direction", "-created_at"], name="msg_mailbox_dir_created"
            ),
            # Message lists filtered across mailboxes by direction and status.
            models.Index(
                fields=["direction", "status", "-created_at"], name="msg_dir_status_created"
            ),
            # Dashboard (and mailbox list): each mailbox's oldest unacknowledged inbound message.
            # Only those rows, so it stays small and no planner prefers walking a mailbox's
            # inbound rows from the oldest.
            models.Index(
                fields=["mailbox", "created_at"],
                name="msg_unacknowledged",
                condition=models.Q(direction="in", status="received"),
            ),
            # Dashboard chart and date-range filters.
            models.Index(fields=["-created_at"], name="msg_created"),
            # The outbox sweeper.
            models.Index(fields=["status", "next_attempt_at"], name="msg_status_next_attempt"),
            # The tracking refresh (refresh_tracking): accepted messages whose next look is due.
            models.Index(fields=["status", "next_track_at"], name="msg_status_next_track"),
            # Search by MESH message id (any mailbox) and linking reports.
            models.Index(fields=["mesh_message_id"], name="msg_mesh_id"),
            # Search by local id.
            models.Index(fields=["local_id"], name="msg_local_id"),
            # Search by filename (a prefix range).
            models.Index(fields=["filename"], name="msg_filename"),
            # Message lists filtered by direction only, newest first.
            models.Index(fields=["direction", "-created_at"], name="msg_dir_created"),
            # Message log (messaging:list, audit:message_export) by one filter alone, newest first:
            # without these, a rare or absent value walks the whole created_at index, and a common
            # one sorts every match (seconds at a million rows). Environment walks msg_mailbox_created
            # once per mailbox (portal.messaging.log).
            models.Index(fields=["mailbox", "-created_at"], name="msg_mailbox_created"),
            models.Index(fields=["status", "-created_at"], name="msg_status_created"),
            models.Index(fields=["workflow_id", "-created_at"], name="msg_workflow_created"),
            models.Index(fields=["sender", "-created_at"], name="msg_sender_created"),
            models.Index(fields=["recipient", "-created_at"], name="msg_recipient_created"),
        ]
        permissions = [
            ("send_message", "Can send messages"),
            ("download_payload", "Can download message payloads"),
        ]

    def __str__(self) -> str:
        return self.mesh_message_id or f"message #{self.pk}"

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:  # the search's word index (search.py); subject and filename never change
            MessageWord.index([self])

    @property
    def is_outbound(self) -> bool:
        return self.direction == Direction.OUTBOUND

    @property
    def is_report(self) -> bool:
        return self.message_type == MessageType.REPORT

    def can_fix_and_resend(self) -> bool:
        """A failed outbound data message can be copied into a new send with its fields edited."""
        return self.is_outbound and not self.is_report and self.status == Status.FAILED

    def recipient_display(self) -> str:
        """The recipient for lists and audit records: a demographic address masked."""
        if not self.demographic:
            return self.recipient
        return f"{self.recipient[:3]}******* (demographic address)"

    def progress_percent(self) -> int:
        if not self.chunks_total:
            return 0
        return int(100 * self.chunks_done / self.chunks_total)

    def may_refresh_tracking_at(self):
        """When a person may next ask MESH for this message's tracking; None: now."""
        if self.last_tracked_at is None:
            return None
        return self.last_tracked_at + TRACK_NOW_EVERY

    def acknowledge_by(self):
        """When MESH will give up on an inbound message not yet acknowledged."""
        if self.received_at is None:
            return None
        return self.received_at + INBOX_EXPIRY

    def add_event(self, kind: str, detail: str = "", *, chunk: int | None = None, actor=None):
        return self.events.create(kind=kind, detail=detail, chunk=chunk, actor=actor)


class MessageWord(models.Model):
    """One lower-cased word of a message's subject or filename: the message search reads this
    index by word prefix (portal.messaging.search), however many messages there are."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    word = models.CharField(max_length=50)
    # The message's created_at (which never changes), so a word's entries are read in the
    # message list's order from the index (search.WordWalk), without the messages.
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["word", "message"], name="msgword_word_message"),
            models.Index(fields=["word", "created_at", "message"], name="msgword_word_created"),
        ]

    def __str__(self) -> str:
        return self.word

    @classmethod
    def index(cls, messages) -> None:
        """The words of messages just created (`Message.save` does it; after a bulk_create, call
        it in the same transaction)."""
        cls.objects.bulk_create(
            cls(message=message, word=word, created_at=message.created_at)
            for message in messages
            for word in words_of(message.subject, message.filename)
        )


class MessageEvent(models.Model):
    class Kind(models.TextChoices):
        QUEUED = "queued", "Queued"
        CLAIMED = "claimed", "Picked up by a worker"
        CHUNK_SENT = "chunk_sent", "Chunk uploaded"
        ACCEPTED = "accepted", "Accepted by MESH"
        RETRY = "retry", "Will retry"
        FAILED = "failed", "Failed"
        UNCERTAIN = "uncertain", "Outcome unknown"
        DOWNLOADED = "downloaded", "Downloaded"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        REPORT = "report", "Non-delivery report"
        TRACKED = "tracked", "Tracking update"
        RESENT = "resent", "Re-queued by a person"
        CONFIRMED = "confirmed", "Delivery confirmed"
        NOTE = "note", "Note"
        COPIED = "copied", "Copied into a new send"
        BUSINESS_ACK = "business_ack", "Business acknowledgement"
        PURGED = "purged", "Payload purged"
        HOLD = "hold", "Legal hold"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.TextField(blank=True)
    chunk = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"

    def timeline_line(self, chunks_total: int = 0) -> tuple[str, str, str]:
        """(heading, rest of the line, detail below) for the timeline, saying nothing twice.

        "Chunk uploaded" with "Chunk 1 of 3 uploaded" is one line, "Chunk 1 of 3 uploaded"; a detail
        that begins with the heading continues it ("Acknowledged" + " to MESH").
        """
        heading, detail = self.get_kind_display(), self.detail.strip()
        if self.kind == self.Kind.CHUNK_SENT and self.chunk:
            of = f" of {chunks_total}" if chunks_total else ""
            heading = f"Chunk {self.chunk}{of} uploaded"
            if re.fullmatch(r"chunk \d+( of \d+)? uploaded\.?", detail, re.IGNORECASE):
                detail = ""
            return heading, "", detail
        if detail.casefold().startswith(heading.casefold()):
            return heading, detail[len(heading) :], ""
        return heading, "", detail


class InboundFailureQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)

    def open(self):
        """Failures of messages not received yet (held back, quarantined or left)."""
        return self.exclude(status=InboundFailure.State.RECEIVED)

    def needing_a_person(self):
        return self.filter(status=InboundFailure.State.QUARANTINED)


class InboundFailure(models.Model):
    """An inbound MESH message that could not be received: why, how often, and what happens next.

    One row per mailbox and MESH message id. A failing message is backed off (not downloaded on
    every poll), then quarantined for a person, who can retry it or leave it in MESH (where it
    expires after 5 days and its sender gets a non-delivery report). Received later: RECEIVED.
    """

    audit_mailbox = "mailbox_id"  # the audit trail reads a record's reach by it

    class State(models.TextChoices):
        BACKING_OFF = "backing_off", "Will try again"
        QUARANTINED = "quarantined", "Quarantined: needs a person"
        LEFT = "left", "Left in MESH by a person"
        RECEIVED = "received", "Received after all"

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="inbound_failures"
    )
    mesh_message_id = models.CharField("MESH message id", max_length=100)
    status = models.CharField(max_length=20, choices=State.choices, default=State.BACKING_OFF)
    reason = models.TextField(help_text="The last failure, in plain English.")
    failures = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = InboundFailureQuerySet.as_manager()

    class Meta:
        ordering = ["-last_failed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "mesh_message_id"], name="inbound_failure_unique_mesh_id"
            )
        ]
        indexes = [
            models.Index(fields=["status", "-last_failed_at"], name="inbound_failure_status")
        ]

    def __str__(self) -> str:
        return f"{self.mesh_message_id} ({self.get_status_display()})"

    def held(self, now=None) -> bool:
        """Should the poller leave this message in MESH for now?"""
        if self.status in {self.State.QUARANTINED, self.State.LEFT}:
            return True
        now = now or timezone.now()
        return self.status == self.State.BACKING_OFF and bool(
            self.next_attempt_at and self.next_attempt_at > now
        )


class RetentionRule(models.Model):
    """Keep payloads N days, then purge them (the message's metadata, timeline and audit stay).

    A rule matches by mailbox (blank: any), direction (blank: any) and workflow pattern (a shell
    glob, `*` any). Where several match a message, the most specific governs it (mailbox, then
    direction, then a pattern without wildcards), and of equally specific ones the one keeping
    longest.
    """

    class Clock(models.TextChoices):
        CONFIRMED = "confirmed", "After delivery is confirmed"
        RECEIVED = "received", "After receipt (inbound) or acceptance by MESH (outbound)"

    name = models.CharField(max_length=200, unique=True)
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices, blank=True)
    workflow_pattern = models.CharField(
        max_length=300, default="*", help_text="A workflow id, or a pattern such as PATH_*."
    )
    keep_days = models.PositiveIntegerField(
        help_text="Days the payload is kept after the clock starts; 0 purges at the next sweep."
    )
    clock = models.CharField(
        max_length=10,
        choices=Clock.choices,
        default=Clock.CONFIRMED,
        help_text="Confirmed: a payload never confirmed delivered is never purged by this rule.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LegalHoldQuerySet(models.QuerySet):
    def active(self):
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    """While active, the payloads of the message, or of every message of the workflow, are kept."""

    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="legal_holds"
    )
    workflow_id = models.CharField(max_length=300, blank=True)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(message__isnull=False) & models.Q(workflow_id=""))
                | (models.Q(message__isnull=True) & ~models.Q(workflow_id="")),
                name="legal_hold_message_or_workflow",
            )
        ]

    def __str__(self) -> str:
        target = f"message {self.message}" if self.message_id else f"workflow {self.workflow_id}"
        return f"Legal hold on {target}"


# Running totals and worker heartbeats, written beside the messages (portal.ops reads them).


class Heartbeat(models.Model):
    """Written by the worker's every-minute jobs; /healthz reads its age to see workers are alive."""

    name = models.CharField(max_length=50, unique=True)
    at = models.DateTimeField(default=timezone.now)
    by = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "ops_heartbeat"  # made by portal.ops before it moved here

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
        db_table = "ops_messagecount"  # made by portal.ops before it moved here
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
        cls.add_many([message], event, code)

    @classmethod
    def add_many(cls, messages, event: str, code: str = "") -> None:
        """Count messages (and their bytes), one update per counter; inside their transaction."""
        totals: dict[tuple, list[int]] = {}
        for message in messages:
            total = totals.setdefault((message.mailbox_id, message.direction), [0, 0])
            total[0] += 1
            total[1] += message.size_bytes or 0
        for (mailbox_id, direction), (count, size) in totals.items():
            key = {
                "mailbox_id": mailbox_id,
                "direction": direction,
                "event": event,
                "code": (code or "")[:20],
            }
            bump = {"messages": F("messages") + count, "bytes": F("bytes") + size}
            if cls.objects.filter(**key).update(**bump):
                continue
            try:
                with transaction.atomic():
                    cls.objects.create(**key, messages=count, bytes=size)
            except IntegrityError:  # another worker created the row first
                cls.objects.filter(**key).update(**bump)
