"""Sign-in lockouts into the audit trail (once per lock and window, never each failure); a new
sign-in starts without a second factor."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .factors import factor_clear
from .services import signin_lockout_record


@receiver(user_locked_out, dispatch_uid="neomesh_signin_lockout")
def on_locked_out(sender, request=None, username=None, **kwargs):
    if request is not None:
        signin_lockout_record(request=request, username=username)


@receiver(user_logged_in, dispatch_uid="neomesh_factor_cleared_on_sign_in")
def on_logged_in(sender, request=None, user=None, **kwargs):
    # A new sign-in proves nothing about a second factor, whatever the session held before.
    if request is not None and hasattr(request, "session"):
        factor_clear(request)
