from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

import meshcore
from portal.accounts import reach
from portal.lib.fields import EncryptedTextField

from .hosts import base_url_problem

MAILBOX_ID_RE = re.compile(r"^[A-Z0-9]{3,20}$")
ODS_CODE_RE = re.compile(r"^[A-Z0-9]{3,10}$")
WORKFLOW_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,300}$")

# A handshake older than this needs attention: MESH expects one at least every 24 hours.
HANDSHAKE_STALE_AFTER = timedelta(hours=25)
# A new mailbox is handshaken and polled as soon as the workers run (the daily handshake and the
# poll are due at once): until then, and for this long at most, it is "being checked".
FIRST_CHECK_WITHIN = timedelta(minutes=15)
# MESH: poll no more than once every 5 minutes and at least once a day (mesh-protocol.md 4.2).
MIN_POLL_INTERVAL = timedelta(minutes=5)
MAX_POLL_INTERVAL = timedelta(days=1)
CHUNKING_HELP = (
    "The MESH UI and older MESH clients cannot receive chunked messages: untick for such "
    "recipients, and a message too large for one request to them is refused when it is queued."
)


def validate_mailbox_id(value: str) -> None:
    if not MAILBOX_ID_RE.match(value or ""):
        raise ValidationError(
            "A MESH mailbox id is 3 to 20 upper-case letters and digits, for example X26ABC1."
        )


def validate_ods_code(value: str) -> None:
    if not ODS_CODE_RE.match(value or ""):
        raise ValidationError(
            "An ODS code is 3 to 10 upper-case letters and digits, for example X26."
        )


def validate_workflow_id(value: str) -> None:
    if not WORKFLOW_ID_RE.match(value or ""):
        raise ValidationError(
            "A workflow id is letters, digits, underscores, hyphens and dots, for example TEST_WORKFLOW."
        )


class RequestLimit(models.IntegerChoices):
    """MESH's largest upload request, after compression (mesh-protocol.md 7.1)."""

    INTERNET = meshcore.DEFAULT_MAX_REQUEST_BYTES, "20 MB (internet endpoints: all current ones)"
    HSCN = meshcore.HSCN_MAX_REQUEST_BYTES, "100 MB (HSCN)"


class OrganisationQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_organisations(self, user, organisation="pk")


class Organisation(models.Model):
    name = models.CharField(max_length=200)
    ods_code = models.CharField(
        "ODS code", max_length=10, unique=True, validators=[validate_ods_code]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code})"


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    INTEGRATION = "integration", "Integration"
    DEPLOYMENT = "deployment", "Deployment"
    LIVE = "live", "Live"


class MailboxQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user, mailbox="pk")

    def enabled(self):
        return self.filter(enabled=True)

    def due_for_poll(self, now=None):
        """Enabled mailboxes whose poll interval has passed (or that were never polled)."""
        now = now or timezone.now()
        return [m for m in self.enabled() if m.poll_due(now)]

    def for_dashboard(self):
        return self.select_related("organisation").order_by("environment", "mailbox_id")

    # The poll claim (`poll_claimed_at/by`): one poll, or one conformance run, per mailbox at a time.
    # Each is a conditional update, so two workers never both hold it; a claim whose holder stopped
    # refreshing it for `lease` is free again. Shared by the poller and conformance runs.

    def claim_poll(self, owner: str, *, lease: timedelta) -> int:
        """Take the claim of these mailboxes where it is free or lapsed; how many were taken."""
        now = timezone.now()
        free = Q(poll_claimed_at__isnull=True) | Q(poll_claimed_at__lt=now - lease)
        return self.filter(free).update(poll_claimed_at=now, poll_claimed_by=owner)

    def refresh_poll_claim(self, owner: str) -> int:
        """Touch the claim where it is still `owner`'s; fewer than asked means one was taken."""
        return self.filter(poll_claimed_by=owner).update(poll_claimed_at=timezone.now())

    def release_poll_claim(self, owner: str, **fields) -> int:
        """Give the claim back where it is still `owner`'s, writing `fields` in the same update."""
        return self.filter(poll_claimed_by=owner).update(
            poll_claimed_at=None, poll_claimed_by="", **fields
        )


class Mailbox(models.Model):
    audit_mailbox = "pk"  # the audit trail reads a record's reach by it

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="mailboxes"
    )
    environment = models.CharField(max_length=20, choices=Environment.choices)
    mailbox_id = models.CharField(
        "MESH mailbox id", max_length=20, unique=True, validators=[validate_mailbox_id]
    )
    name = models.CharField(max_length=200, blank=True)
    base_url = models.URLField(
        "Base URL", blank=True, help_text="Leave blank for the environment's published MESH host."
    )
    password = EncryptedTextField(blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    shared_key = EncryptedTextField(blank=True)
    shared_key_changed_at = models.DateTimeField(null=True, blank=True)
    ca_bundle = models.TextField(
        "CA bundle (PEM)",
        blank=True,
        help_text="The environment's root and sub-CA certificates. Blank means the system trust store.",
    )
    verify_tls = models.BooleanField("Verify the server's TLS certificate", default=True)
    enabled = models.BooleanField(default=True)
    poll_interval_minutes = models.PositiveIntegerField(
        default=5,
        validators=[
            MinValueValidator(5, "MESH allows a poll at most once every 5 minutes: 5 or more."),
            MaxValueValidator(24 * 60, "MESH expects a poll at least once a day: 1440 or fewer."),
        ],
        help_text="MESH asks for a poll at most every 5 minutes and at least once a day (5 to 1440).",
    )
    max_request_bytes = models.PositiveIntegerField(
        "Largest MESH request",
        choices=RequestLimit.choices,
        default=RequestLimit.INTERNET,
        help_text="MESH's limit per upload request after compression: a message that fits goes in "
        "one request, a larger one in chunks that each fit.",
    )

    # Health, written by the workers.
    last_handshake_at = models.DateTimeField(null=True, blank=True)
    last_handshake_ok = models.BooleanField(null=True)
    last_handshake_ms = models.PositiveIntegerField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_ok = models.BooleanField(null=True)
    inbox_backlog = models.PositiveIntegerField(null=True, blank=True)
    # When the current run of failing polls began (None while polls succeed).
    poll_failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker polls this mailbox: the claim that keeps polls of one mailbox one at a time.
    poll_claimed_at = models.DateTimeField(null=True, blank=True)
    poll_claimed_by = models.CharField(max_length=100, blank=True)
    # Set when a person asks for a poll now: with last_poll_at, it keeps "Poll now" within MESH's
    # 5 minutes between polls.
    poll_requested_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MailboxQuerySet.as_manager()

    class Meta:
        ordering = ["mailbox_id"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return f"{self.mailbox_id} ({self.get_environment_display()})"

    def save(self, *args, **kwargs):
        self.mailbox_id = (self.mailbox_id or "").strip().upper()
        if kwargs.get("update_fields") is None:
            self.secrets_cleared_because = self._clear_secrets_if_moved()
        super().save(*args, **kwargs)

    def clean(self):
        """Where the credentials may go (portal.mailboxes.hosts), TLS, and a live environment kept."""
        super().clean()
        if self.environment not in settings.MESH_BASE_URLS:
            return
        errors = {}
        problem = base_url_problem(self.environment, self.effective_base_url())
        if problem:
            errors["base_url"] = problem
        if not self.verify_tls and self.environment != Environment.SANDBOX:
            errors["verify_tls"] = (
                "Only a sandbox mailbox may skip TLS verification: MESH's own hosts always verify. "
                "Give the environment's CA bundle instead if the system trust store lacks it."
            )
        stored = self._stored()
        if stored and stored.is_live and self.environment != Environment.LIVE:
            errors["environment"] = (
                "A live mailbox stays live: its environment cannot change. Add a new mailbox for "
                "another environment."
            )
        if errors:
            raise ValidationError(errors)

    def _stored(self) -> Mailbox | None:
        return type(self).objects.filter(pk=self.pk).first() if self.pk else None

    def connection_changes(self, stored: Mailbox) -> list[str]:
        """What about where and how this mailbox connects differs from `stored`."""
        pairs = (
            ("the MESH host", stored.effective_base_url(), self.effective_base_url()),
            ("the environment", stored.environment, self.environment),
            ("TLS verification", stored.verify_tls, self.verify_tls),
            ("the CA bundle", stored.ca_bundle.strip(), self.ca_bundle.strip()),
        )
        return [label for label, before, after in pairs if before != after]

    def _clear_secrets_if_moved(self) -> list[str]:
        """Stored secrets never follow the mailbox to another host, environment or TLS setting.

        A password or shared key entered with the change is kept: the person re-entered it for the
        new place. Returns what changed when something was cleared, else [].
        """
        stored = self._stored()
        changes = self.connection_changes(stored) if stored else []
        if not changes:
            return []
        cleared = False
        if self.password and self.password == stored.password:
            self.password, self.password_changed_at, cleared = "", None, True
        if self.shared_key and self.shared_key == stored.shared_key:
            self.shared_key, self.shared_key_changed_at, cleared = "", None, True
        return changes if cleared else []

    @property
    def is_live(self) -> bool:
        return self.environment == Environment.LIVE

    def effective_base_url(self) -> str:
        return (self.base_url or settings.MESH_BASE_URLS[self.environment]).rstrip("/")

    @property
    def uses_tls(self) -> bool:
        """Whether MESH is reached over HTTPS (a sandbox may be plain HTTP: nothing to verify)."""
        return self.effective_base_url().lower().startswith("https://")

    def poll_due(self, now=None) -> bool:
        now = now or timezone.now()
        if self.last_poll_at is None:
            return True
        return self.last_poll_at + timedelta(minutes=self.poll_interval_minutes) <= now

    def next_poll_allowed_at(self):
        """When MESH's 5 minutes since the last poll (or the last "Poll now") are up; None: now."""
        times = [t for t in (self.last_poll_at, self.poll_requested_at) if t is not None]
        return max(times) + MIN_POLL_INTERVAL if times else None

    def active_certificate(self):
        """See `Certificate.objects.active_for` (certificates stand on mailboxes, not the reverse)."""
        return self.certificates.active_for(self)

    def is_being_checked(self, now=None) -> bool:
        """Never handshaken yet, nothing failed, and new: the workers are about to check it."""
        now = now or timezone.now()
        return bool(
            self.enabled
            and self.last_handshake_at is None
            and self.last_handshake_ok is None
            and self.last_poll_ok is not False
            and not self.last_error
            and self.created_at
            and self.created_at > now - FIRST_CHECK_WITHIN
        )

    def attention_reasons(self, now=None) -> list[str]:
        """Why this mailbox needs a person's attention; empty when all is well."""
        now = now or timezone.now()
        reasons = []
        if not self.enabled:
            reasons.append("Disabled")
        if self.last_handshake_ok is False:
            reasons.append("Last handshake failed")
        elif self.is_being_checked(now):
            pass  # not a warning: "checking…" until the first handshake
        elif self.last_handshake_at is None or self.last_handshake_at < now - HANDSHAKE_STALE_AFTER:
            reasons.append("No successful handshake in the last 24 hours")
        if self.last_poll_ok is False:
            reasons.append("Last poll failed")
        if self.last_error and self.last_error_at and self.last_error_at > now - timedelta(days=1):
            reasons.append("Recent error")
        if not self.password or not self.shared_key:
            reasons.append("Credentials not set")
        return reasons


class Workflow(models.Model):
    class Direction(models.TextChoices):
        SEND = "send", "Send"
        RECEIVE = "receive", "Receive"

    class AckMatch(models.TextChoices):
        """How a business acknowledgement (<WORKFLOW>_ACK) names the message it acknowledges."""

        LOCAL_ID = "local_id", "Its local id is our local id"
        SUBJECT = "subject", "Its subject is our local id"
        MESSAGE_ID = "message_id", "Its local id is our MESH message id"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="workflows")
    workflow_id = models.CharField("Workflow id", max_length=300, validators=[validate_workflow_id])
    direction = models.CharField(max_length=10, choices=Direction.choices)
    description = models.CharField(max_length=300, blank=True)
    accepts_chunked = models.BooleanField(
        "Recipients accept chunked messages", default=True, help_text=CHUNKING_HELP
    )
    demographic_addressing = models.BooleanField(
        "Demographic addressing",
        default=False,
        help_text="MESH routes this workflow by patient: the recipient may be given as an NHS "
        "number (optionally _YYYYMMDD date of birth and _Surname) instead of a mailbox id.",
    )
    business_ack_hours = models.PositiveIntegerField(
        "Business acknowledgement expected within (hours)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
        help_text="For sending: how soon the recipient sends its <workflow>_ACK message. Blank: none "
        "expected. An overdue one raises an alert.",
    )
    business_ack_match = models.CharField(
        "Business acknowledgement names our message by",
        max_length=20,
        choices=AckMatch.choices,
        default=AckMatch.LOCAL_ID,
    )

    class Meta:
        ordering = ["workflow_id", "direction"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "workflow_id", "direction"], name="workflow_unique_per_mailbox"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} ({self.get_direction_display()})"


class Recipient(models.Model):
    """What NeoMesh knows about a mailbox it sends to: today, whether it takes chunked messages."""

    mailbox_id = models.CharField(
        "Recipient mailbox id", max_length=20, unique=True, validators=[validate_mailbox_id]
    )
    name = models.CharField(max_length=200, blank=True)
    accepts_chunked = models.BooleanField(
        "Accepts chunked messages", default=True, help_text=CHUNKING_HELP
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["mailbox_id"]

    def __str__(self) -> str:
        return self.mailbox_id

    def save(self, *args, **kwargs):
        self.mailbox_id = (self.mailbox_id or "").strip().upper()
        super().save(*args, **kwargs)


def chunking_refused_reason(*, mailbox: Mailbox, recipient: str, workflow_id: str) -> str:
    """Why a chunked message from `mailbox` to `recipient` on `workflow_id` is not allowed; "" if it is."""
    if Recipient.objects.filter(mailbox_id=recipient, accepts_chunked=False).exists():
        return f"{recipient} does not accept chunked messages"
    workflow = mailbox.workflows.filter(
        workflow_id=workflow_id, direction=Workflow.Direction.SEND, accepts_chunked=False
    )
    if workflow.exists():
        return f"recipients on {workflow_id} do not accept chunked messages"
    return ""
