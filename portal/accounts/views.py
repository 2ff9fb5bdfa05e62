"""Sign-in lockouts for admins: who is locked out, and the unlock (audited)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.decorators import permission_required

from .addresses import normalise_ip
from .services import signin_lockouts, signin_unlock

UNLOCK_PERMISSION = "axes.delete_accessattempt"


@permission_required("axes.view_accessattempt")
def lockout_list(request):
    limits = {
        "address_user": settings.AXES_FAILURE_LIMIT,
        "username": settings.AXES_USERNAME_FAILURE_LIMIT,
        "address": settings.AXES_ADDRESS_FAILURE_LIMIT,
    }
    context = {
        "lockouts": signin_lockouts()[:200],
        "limits": limits,
        "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    return render(request, "accounts/lockouts.html", context)


@permission_required(UNLOCK_PERMISSION)
@require_POST
def lockout_unlock(request):
    username = request.POST.get("username", "").strip()[:150]
    address = normalise_ip(request.POST.get("address", "")) or ""
    if not username and not address:
        messages.error(request, "Give a username or an address to unlock.")
        return redirect("accounts:lockouts")
    count = signin_unlock(username=username, address=address, request=request)
    who = " from ".join(part for part in (username, address) if part)
    messages.success(request, f"Sign-in unlocked for {who}: {count} failure record(s) cleared.")
    return redirect("accounts:lockouts")
