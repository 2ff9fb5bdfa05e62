"""Reach (which organisations, and within them which mailboxes, a person may see) and the links
of people to their identity provider accounts (single sign-on).

Mailboxes and organisations are named by their model references only (like AUTH_USER_MODEL): the
accounts app never imports the mailboxes app's code (tests/test_layering.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

# The permission that gives a person every organisation (NeoMesh's own staff); superusers have it.
EVERY_ORGANISATION = "accounts.every_organisation"


class Membership(models.Model):
    """A person's part in one organisation: every one of its mailboxes, or only those listed."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        "mailboxes.Organisation", on_delete=models.CASCADE, related_name="memberships"
    )
    # Empty: every mailbox of the organisation, now and later. Else only these (of this organisation).
    mailboxes = models.ManyToManyField(
        "mailboxes.Mailbox",
        blank=True,
        related_name="+",
        help_text="Leave empty for every mailbox of the organisation.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation"], name="accounts_membership_one_per_organisation"
            )
        ]
        permissions = [("every_organisation", "Can see every organisation and mailbox")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation}"

    def check_mailboxes(self, mailboxes) -> None:
        """Refuse mailboxes of another organisation (a limit names this organisation's own)."""
        strays = [m for m in mailboxes if m.organisation_id != self.organisation_id]
        if strays:
            names = ", ".join(sorted(m.mailbox_id for m in strays))
            raise ValidationError(
                f"{names} belong to another organisation than {self.organisation}."
            )


class SsoIdentity(models.Model):
    """A person's account at an identity provider (issuer + subject), linked to one NeoMesh user.

    Sign-in finds the user by this link, never by a name the provider may give someone else later.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_signed_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="accounts_ssoidentity_one_per_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.issuer}"
