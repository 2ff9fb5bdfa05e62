from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.accounts import reach
from portal.lib.fields import EncryptedTextField

# Warnings start 90 days out; NHS England takes up to 5 working days to issue a renewal.
WARN_WITHIN_DAYS = 90
# An event is raised once as each of these is crossed (days before expiry).
EXPIRY_THRESHOLDS = (90, 30, 14, 7, 1)


class CertificateQuerySet(models.QuerySet):
    def within_reach(self, user):
        return reach.within_reach(self, user)

    def active(self):
        return self.filter(status=Certificate.Status.ACTIVE)

    def active_for(self, mailbox) -> Certificate | None:
        """The mailbox's active certificate (the one the MESH client presents), or None.

        The one lookup for it: the client, the readiness gate, onboarding's checks, installing a
        new certificate and the pages all ask here.
        """
        return self.active().filter(mailbox_id=mailbox.pk).order_by("-not_after").first()

    def current(self):
        """What a mailbox's health shows: its active certificate, or one that expired unreplaced.

        After the daily check marks a certificate expired, pages should say "Expired", not "No
        certificate"; ordered by -not_after, an active one always wins over an expired one.
        """
        return self.filter(status__in=[Certificate.Status.ACTIVE, Certificate.Status.EXPIRED])

    def expiring(self, *, within: timedelta = timedelta(days=WARN_WITHIN_DAYS), now=None):
        now = now or timezone.now()
        return self.active().filter(not_after__lte=now + within)


class Certificate(models.Model):
    audit_mailbox = "mailbox_id"  # the audit trail reads a record's reach by it

    class Status(models.TextChoices):
        AWAITING = "awaiting", "CSR made, awaiting certificate"
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded"
        EXPIRED = "expired", "Expired"

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.PROTECT, related_name="certificates"
    )
    common_name = models.CharField("CN", max_length=200)
    private_key = EncryptedTextField(blank=True)
    csr_pem = models.TextField("CSR (PEM)")
    certificate_pem = models.TextField("Issued certificate (PEM)", blank=True)
    chain_pem = models.TextField("Chain (PEM)", blank=True)
    serial = models.CharField(max_length=100, blank=True)
    issuer = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING)
    service_desk_ticket = models.CharField(
        "Service desk ticket",
        max_length=100,
        blank=True,
        help_text="The ITOC or National Service Desk reference for the CSR request.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    # The smallest expiry threshold an event was raised for (EXPIRY_THRESHOLDS), so each is once.
    expiry_warned_days = models.PositiveSmallIntegerField(null=True, blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The transfer code uses "the" active certificate: never two at once.
            models.UniqueConstraint(
                fields=["mailbox"],
                condition=models.Q(status="active"),
                name="one_active_certificate",
            )
        ]

    def __str__(self) -> str:
        return f"{self.common_name} ({self.get_status_display()})"

    def days_left(self, now=None) -> int | None:
        if self.not_after is None:
            return None
        now = now or timezone.now()
        return (self.not_after - now).days

    def is_expired(self, now=None) -> bool:
        return self.not_after is not None and self.not_after <= (now or timezone.now())

    def expiry_threshold(self, now=None) -> int | None:
        """The smallest threshold this certificate is within, if it is within any."""
        if self.not_after is None:
            return None
        left = self.not_after - (now or timezone.now())
        crossed = [days for days in EXPIRY_THRESHOLDS if left <= timedelta(days=days)]
        return min(crossed) if crossed else None

    def needs_warning(self, now=None) -> bool:
        days = self.days_left(now)
        return days is not None and days <= WARN_WITHIN_DAYS
