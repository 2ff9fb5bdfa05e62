"""Routes (which received messages go where), destinations (where) and deliveries (one per message
per destination, with its state, attempts and last error in plain English)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from portal.accounts import reach
from portal.lib.fields import EncryptedTextField


class DestinationKind(models.TextChoices):
    DIRECTORY = "directory", "Directory"
    S3 = "s3", "S3-compatible object storage"
    AZURE = "azure", "Azure Blob storage"
    WEBHOOK = "webhook", "Signed webhook"
    HELD = "held", "Held for the API"


class DestinationQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Destinations no route out of `user`'s reach uses. A destination belongs to no
        organisation: one in use by another organisation's route is out of reach (its page is a
        404, it is not offered), an unused one is anyone's who manages destinations."""
        if reach.sees_everything(user):
            return self
        outside = Route.objects.exclude(pk__in=Route.objects.within_reach(user).values("pk"))
        return self.exclude(routes__in=outside.values("pk"))


class Destination(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=DestinationKind.choices)
    # Kind-specific, never secret: directory {path, template, sidecar}; s3 {bucket, prefix,
    # endpoint_url, region, access_key_id}; azure {account_url, account_name, container, prefix};
    # webhook {url, timeout, body_limit, link_ttl}.
    settings = models.JSONField(default=dict, blank=True)
    # The S3 secret access key, the Azure account key (or SAS token) or the webhook signing secret:
    # encrypted, write-only in forms.
    secret = EncryptedTextField(blank=True)
    # When the secret was last set: the pages show that one is set and when, never the value.
    secret_changed_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DestinationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class RouteQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)


class Route(models.Model):
    name = models.CharField(max_length=100)
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="routes"
    )
    # Exact ("PATHOLOGY_RESULTS"), a prefix ending in "*" ("PATH_*"), or "*" for every workflow.
    workflow_pattern = models.CharField(max_length=300, default="*")
    message_type = models.CharField(
        max_length=6, choices=[("DATA", "Data"), ("REPORT", "Report")], default="DATA"
    )
    destinations = models.ManyToManyField(
        Destination, through="RouteDestination", related_name="routes"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = RouteQuerySet.as_manager()

    class Meta:
        ordering = ["mailbox_id", "name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.workflow_pattern} {self.message_type}"

    def matches(self, workflow: str) -> bool:
        pattern = self.workflow_pattern
        if pattern.endswith("*"):
            return workflow.startswith(pattern[:-1])
        return workflow == pattern

    def specificity(self) -> tuple[int, int]:
        """Exact beats any prefix; a longer prefix beats a shorter one."""
        pattern = self.workflow_pattern
        return (0, len(pattern)) if pattern.endswith("*") else (1, len(pattern))


class RouteDestination(models.Model):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="steps")
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["route", "destination"], name="route_destination_once")
        ]

    def __str__(self) -> str:
        return f"{self.position}: destination {self.destination_id}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed, will retry"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered"


class DeliveryQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user, mailbox="message__mailbox")

    def due(self, now=None):
        now = now or timezone.now()
        return self.filter(
            state__in=[DeliveryState.PENDING, DeliveryState.FAILED], next_attempt_at__lte=now
        )

    def dead_letters(self):
        return self.filter(state=DeliveryState.DEAD_LETTERED)


class Delivery(models.Model):
    audit_mailbox = "message.mailbox_id"  # the audit trail reads a record's reach by it

    message = models.ForeignKey(
        "messaging.Message", on_delete=models.CASCADE, related_name="deliveries"
    )
    destination = models.ForeignKey(
        Destination, on_delete=models.PROTECT, related_name="deliveries"
    )
    route = models.ForeignKey(
        Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    state = models.CharField(
        max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # When it may next be tried; a worker running it holds it by moving this forward (a lease).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, help_text="In plain English.")
    location = models.CharField(max_length=1000, blank=True, help_text="Where it was delivered.")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["message", "destination"], name="delivery_once")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"delivery #{self.pk} of message {self.message_id} to {self.destination_id}"


class Intake(models.Model):
    """A watched directory of a mailbox, in the Java client's style: `OUT/` (data file + JSON control
    file `<name>.json`, written last), `SENT/` and `FAILED/` with a `<name>.result.json`."""

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="intakes"
    )
    path = models.CharField(max_length=1000, unique=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.path} → {self.mailbox_id}"


class IntakeFile(models.Model):
    """One file handed in through a watched directory, by its local id: the key that makes a
    second pick-up (another worker, a restart) send nothing twice."""

    class State(models.TextChoices):
        CLAIMED = "claimed", "Being queued"
        QUEUED = "queued", "Queued to send"
        SENT = "sent", "Accepted by MESH"
        FAILED = "failed", "Failed"

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="+")
    local_id = models.CharField(max_length=300)
    name = models.CharField(max_length=300)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLAIMED)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    claimed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "local_id"], name="intake_local_id_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.local_id})"
