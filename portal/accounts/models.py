from __future__ import annotations

from django.conf import settings
from django.db import models


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
