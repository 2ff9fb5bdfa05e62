"""Second-factor helpers for tests: a session whose factor is proven, and codes from a device."""

from __future__ import annotations

import time

from django_otp.oath import TOTP

from portal.accounts import factors


def prove_factor(client, user, *, at: float | None = None, method: str = "test") -> None:
    """Mark the client's session as having passed the second factor (at `at`, default now)."""
    session = client.session
    session[factors.SESSION_KEY] = {"user": user.pk, "at": at or time.time(), "method": method}
    session.save()


def totp_code(device, *, steps_ahead: int = 0) -> str:
    """The code the person's authenticator app shows now (or `steps_ahead` 30-second steps on)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(user):
    """A confirmed authenticator for `user` (as after enrolment), and its recovery codes."""
    from portal.audit.services import Actor

    device = factors.authenticator_start(user=user)
    device.confirmed = True
    device.save()
    codes = factors.recovery_codes_create(user=user, actor=Actor.person(user=user))
    return device, codes
