"""The second factor's authenticator: django-otp's TOTP device, with its key encrypted at rest.

django-otp's own `TOTPDevice` keeps the key as plain hex in the database; a copy of the database
would then hold every person's second factor. This device is the same RFC 6238 check
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
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from portal.lib.fields import EncryptedTextField


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
