"""Sign-in lockouts into the audit trail: once per lock and window, never each failure."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.dispatch import receiver

from .services import signin_lockout_record


@receiver(user_locked_out, dispatch_uid="neomesh_signin_lockout")
def on_locked_out(sender, request=None, username=None, **kwargs):
    if request is not None:
        signin_lockout_record(request=request, username=username)
