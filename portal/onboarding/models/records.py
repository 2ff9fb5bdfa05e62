"""What a plan accumulates: evidence files, correspondence with NHS England, the IP allow-list
register, and overrides of the readiness gate."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.accounts import reach
from portal.mailboxes.models import Environment

from ..workdays import working_days_between
from .plans import Plan


class PlanRecordQuerySet(models.QuerySet):
    def within_reach(self, user):
        """Rows of plans within reach (Plan.objects.within_reach): the audit trail's reach too."""
        return self.filter(plan__in=Plan.objects.within_reach(user).values("pk"))


class GateOverrideQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)


class EvidenceKind(models.TextChoices):
    CONFORMANCE_CERTIFICATE = "conformance_certificate", "Technical Conformance Certificate"
    DSPT = "dspt", "Data Security and Protection Toolkit"
    CONNECTION_AGREEMENT = "connection_agreement", "Connection agreement"
    SUPPLIER_PACK = "supplier_pack", "Supplier pack"
    CLINICAL_SAFETY = "clinical_safety", "Clinical safety (DCB0129)"
    WITNESS_TEST = "witness_test", "Witnessed test records"
    REPLY = "reply", "NHS England's reply"
    OTHER = "other", "Other"


class Evidence(models.Model):
    """A file kept in private storage under a generated name; the uploaded name is only shown."""

    plan = models.ForeignKey("Plan", on_delete=models.CASCADE, related_name="evidence")
    task = models.ForeignKey(
        "Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="evidence"
    )
    kind = models.CharField(max_length=30, choices=EvidenceKind.choices, default=EvidenceKind.OTHER)
    title = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=200, unique=True)
    file_type = models.CharField(max_length=10)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    review_date = models.DateField(
        "Review or expiry date",
        null=True,
        blank=True,
        help_text="When this evidence lapses and must be renewed (the DSPT is annual).",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Set when NHS England's answer invalidates it (Scenario B: the old conformance certificate).
    # A withdrawn file stays on record but is never attached to an email again.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by_decision = models.ForeignKey(
        "Decision",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="withdrawn_evidence",
    )

    objects = PlanRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-pk"]
        verbose_name_plural = "evidence"
        indexes = [
            # Correspondence attaches the plan's latest conformance certificate.
            models.Index(fields=["plan", "kind"], name="onboarding_evidence_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.original_filename})"

    def is_lapsed(self, today: date | None = None) -> bool:
        return self.review_date is not None and self.review_date < (today or timezone.localdate())

    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def is_current(self, today: date | None = None) -> bool:
        """Whether it may still be sent to NHS England: neither lapsed nor withdrawn."""
        return not self.is_withdrawn() and not self.is_lapsed(today)

    def review_soon(self, today: date | None = None, within_days: int = 30) -> bool:
        if self.review_date is None or self.is_lapsed(today):
            return False
        return (self.review_date - (today or timezone.localdate())).days <= within_days


class CorrespondenceKind(models.TextChoices):
    NSD_CHANGE_QUERY = "nsd_change_query", "Query to the National Service Desk about the change"
    INT_MAILBOX_REQUEST = "int_mailbox_request", "Integration mailbox request"
    LIVE_MAILBOX_REQUEST = "live_mailbox_request", "Live mailbox request details"
    INT_CSR_REQUEST = "int_csr_request", "Integration CSR request to ITOC"
    LIVE_CSR_REQUEST = "live_csr_request", "Live CSR request to the National Service Desk"


class Correspondence(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent, waiting for a reply"
        REPLIED = "replied", "Replied"

    plan = models.ForeignKey("Plan", on_delete=models.CASCADE, related_name="correspondence")
    task = models.ForeignKey(
        "Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="correspondence"
    )
    kind = models.CharField(max_length=30, choices=CorrespondenceKind.choices)
    to_addresses = models.CharField("To", max_length=500, blank=True)
    cc_addresses = models.CharField("Cc", max_length=500, blank=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Its CSR is attached (the CSR only: never the key).",
    )
    attachments = models.ManyToManyField("Evidence", blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    turnaround_days = models.PositiveSmallIntegerField(null=True, blank=True)
    turnaround_published = models.BooleanField(default=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_reference = models.CharField(max_length=100, blank=True)
    reply_text = models.TextField(blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PlanRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "correspondence"

    def __str__(self) -> str:
        return f"{self.subject} ({self.get_status_display()})"

    def working_days_waited(self, today: date | None = None) -> int | None:
        """Working days since it was sent, until the reply (or today while still waiting)."""
        if self.sent_at is None:
            return None
        end = timezone.localdate(self.replied_at) if self.replied_at else today
        return working_days_between(timezone.localdate(self.sent_at), end or timezone.localdate())

    def is_past_turnaround(self, today: date | None = None) -> bool:
        waited = self.working_days_waited(today)
        return (
            waited is not None
            and self.turnaround_days is not None
            and (waited > self.turnaround_days)
        )


class AllowListEntry(models.Model):
    """A public address or range the organisation's client connects from, per environment."""

    organisation = models.ForeignKey(
        "mailboxes.Organisation", on_delete=models.CASCADE, related_name="allow_list"
    )
    environment = models.CharField(max_length=20, choices=Environment.choices)
    network = models.CharField("Address or CIDR range", max_length=50)
    purpose = models.CharField(max_length=200)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment", "network"]
        verbose_name = "allow-list entry"
        verbose_name_plural = "allow-list entries"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "environment", "network"], name="allow_list_no_duplicates"
            )
        ]

    def __str__(self) -> str:
        return f"{self.network} ({self.get_environment_display()}): {self.purpose}"


class GateOverride(models.Model):
    """An admin's written decision to let a live mailbox transfer before the plan allows it."""

    audit_mailbox = "mailbox_id"  # the audit trail reads a record's reach by it

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="gate_overrides"
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    objects = GateOverrideQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("override_gate", "Can override the live readiness gate")]
        constraints = [
            # The gate asks "is there an active override for this mailbox?" before every transfer;
            # this partial unique index answers it and forbids two at once.
            models.UniqueConstraint(
                fields=["mailbox"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_active_gate_override",
            )
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Gate override for {self.mailbox.mailbox_id} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
