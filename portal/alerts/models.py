"""Alerts: channels (email, Teams, Slack, a signed webhook), rules, alerts and their notifications."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.accounts import reach
from portal.events.kinds import KINDS, SEVERITY_ORDER, Severity
from portal.lib.fields import EncryptedTextField

LOOPBACK_HOSTS = {"localhost"}


def split_addresses(text: str) -> list[str]:
    return [
        part.strip()
        for part in (text or "").replace(";", ",").replace("\n", ",").split(",")
        if part.strip()
    ]


def validate_addresses(text: str) -> None:
    addresses = split_addresses(text)
    if not addresses:
        raise ValidationError("Give at least one email address.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address[:100]!r} is not an email address.") from None


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_webhook_url(url: str) -> None:
    """https only (the URL or the body carries a secret); plain http only to this machine."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError("Give a full web address, starting with https://.") from None
    parts = urlsplit(url)
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        raise ValidationError("The address must start with https:// (plain http would expose it).")
    if parts.username or parts.password:
        raise ValidationError("Put no user name or password in the address.")


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        TEAMS = "teams", "Microsoft Teams (incoming webhook or workflow)"
        SLACK = "slack", "Slack (incoming webhook)"
        WEBHOOK = "webhook", "Signed JSON webhook"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    recipients = models.TextField(
        blank=True, help_text="Email: addresses, one per line or comma-separated."
    )
    # Teams and Slack webhook addresses are themselves secrets: encrypted, never shown back.
    url = EncryptedTextField("Webhook address", blank=True)
    secret = EncryptedTextField("Signing secret", blank=True)
    enabled = models.BooleanField(default=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        if self.kind == self.Kind.EMAIL:
            validate_addresses(self.recipients)
        elif not self.url:
            raise ValidationError({"url": "Give the webhook address."})
        else:
            try:
                validate_webhook_url(self.url)
            except ValidationError as exc:
                raise ValidationError({"url": exc.messages}) from None
        if self.kind == self.Kind.WEBHOOK and len(self.secret or "") < 16:
            raise ValidationError({"secret": "Give a signing secret of at least 16 characters."})


class Rule(models.Model):
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    kinds = models.JSONField(
        default=list, blank=True, help_text="Event kinds; empty means every kind."
    )
    min_severity = models.CharField(
        "At least this severe", max_length=10, choices=Severity.choices, default=Severity.ERROR
    )
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty means every mailbox.",
    )
    workflow = models.CharField(
        max_length=300, blank=True, help_text="A workflow id, or a prefix ending in *; empty: any."
    )
    channels = models.ManyToManyField(Channel, related_name="rules")
    digest = models.BooleanField(
        "Daily digest", default=False, help_text="Collect these alerts into one message a day."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = [kind for kind in (self.kinds or []) if kind not in KINDS]
        if not isinstance(self.kinds, list) or unknown:
            raise ValidationError({"kinds": f"Unknown event kinds: {', '.join(map(str, unknown))}"})

    def matches(self, event) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if SEVERITY_ORDER.index(event.severity) < SEVERITY_ORDER.index(self.min_severity):
            return False
        if self.mailbox_id and event.mailbox_id != self.mailbox_id:
            return False
        if self.workflow.endswith("*"):
            return event.workflow.startswith(self.workflow[:-1])
        return not self.workflow or event.workflow == self.workflow


class AlertQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Alerts of mailboxes within reach; alerts of no mailbox (the system's) only for those
        who see everything."""
        return reach.within_reach(self, user, mailbox="mailbox_id")

    def open(self):
        return self.filter(resolved_at__isnull=True)

    def for_inbox(self, now=None):
        """Not acknowledged and not snoozed: what the top bar counts."""
        now = now or timezone.now()
        return self.filter(acknowledged_at__isnull=True).filter(
            Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now)
        )


class Alert(models.Model):
    audit_mailbox = "mailbox_id"  # the audit trail reads a record's reach by it (none: staff's)

    event_seq = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    summary = models.CharField(max_length=500)
    problem_key = models.CharField(max_length=200, blank=True)
    mailbox_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    workflow = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Further events of the same open problem, folded into this alert.
    repeats = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_summary = models.CharField(max_length=500, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Deduplication: the open alert of a problem.
            models.Index(fields=["problem_key", "resolved_at"], name="alerts_problem"),
            # The inbox and the top bar's count.
            models.Index(fields=["acknowledged_at", "-created_at"], name="alerts_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.summary[:80]}"


class Notification(models.Model):
    class Purpose(models.TextChoices):
        ALERT = "alert", "Alert"
        RESOLVED = "resolved", "Resolved"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Sending"
        DIGEST = "digest", "Waiting for the daily digest"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.ALERT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sender's sweep: due pending notifications.
            models.Index(fields=["status", "next_attempt_at"], name="alerts_notification_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} to {self.channel} ({self.get_status_display()})"
