"""The accounts app's models: reach (`Membership`), links of people to their identity provider
accounts (single sign-on), and the second factor (`AuthenticatorDevice`).

Reach: which organisations, and within them which mailboxes, a person may see. Mailboxes and
organisations are named by their model references only (like AUTH_USER_MODEL): the accounts app
never imports the mailboxes app's code (tests/test_layering.py).

The second factor's authenticator: django-otp's TOTP device, with its key encrypted at rest.
django-otp's own `TOTPDevice` keeps the key as plain hex in the database; a copy of the database
would then hold every person's second factor. `AuthenticatorDevice` is the same RFC 6238 check
(`django_otp.oath.TOTP`, the same throttling and replay rule: a code is accepted once, and only a
code of a later time step after it) with the key in an `EncryptedTextField`. Recovery codes are
django-otp's `StaticDevice`, their tokens stored hashed (`portal.accounts.factors`).
"""

from __future__ import annotations

import time
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from portal.lib.fields import EncryptedTextField

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


def new_key() -> str:
    return random_hex(20)


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (TOTP, 30-second steps, 6 digits); `confirmed` once a code matched."""

    key = EncryptedTextField(default=new_key)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    # The time step of the last accepted code: only a later step's code is accepted (no replay).
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    @property
    def bin_key(self) -> bytes:
        return unhexlify(self.key.encode())

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            code = int(str(token).strip())
        except ValueError:
            code = None
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        if code is not None and totp.verify(code, self.tolerance, self.last_t + 1):
            self.last_t, self.drift = totp.t(), totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    @property
    def config_url(self) -> str:
        """The otpauth:// URL an authenticator app reads from the enrolment QR code."""
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = f"{issuer}:{self.user.get_username()}"
        params = {
            "secret": b32encode(self.bin_key).decode(),
            "algorithm": "SHA1",
            "digits": self.digits,
            "period": self.step,
            "issuer": issuer,
        }
        return f"otpauth://totp/{quote(label)}?{urlencode(params, quote_via=quote)}"

    def secret_text(self) -> str:
        """The key in base32, in groups of four, for typing into an app that cannot scan."""
        text = b32encode(self.bin_key).decode()
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
