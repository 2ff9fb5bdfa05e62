"""The second factor's pages: enrol an authenticator app, verify a code, new recovery codes."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.audit.services import Actor, record

from . import factors
from .forms import CodeForm, EnrolForm


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _locked(request) -> bool:
    return AxesProxyHandler.is_locked(request, {"username": request.user.get_username()})


def _refuse_locked(request):
    """The person's sign-in is locked (wrong passwords or codes): their session ends here."""
    logout(request)
    return render(request, "registration/locked.html", status=429)


def _count_failure(request) -> None:
    """A wrong code is a failed sign-in of this username for django-axes (and its lockout)."""
    credentials = {"username": request.user.get_username()}
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as an SVG data URI: drawn here, nothing fetched, no inline style."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@never_cache
@login_required
def factor_enrol(request):
    """Add NeoMesh to an authenticator app (QR code or typed key), confirm with its first code."""
    if factors.authenticator_for(request.user):
        return redirect(factors.factor_url(request, next_url=_next(request)))
    if _locked(request):
        return _refuse_locked(request)
    device = factors.authenticator_start(user=request.user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actor = Actor.person(request)
        if factors.authenticator_confirm(
            device=device, code=form.cleaned_data["code"], actor=actor
        ):
            factors.factor_mark_verified(request, method="totp")
            codes = factors.recovery_codes_create(user=request.user, actor=actor)
            context = {"codes": codes, "next": _next(request), "enrolled": True}
            # Rendered, not redirected: the codes are on this one response and nowhere else.
            return render(request, "accounts/recovery_codes.html", context)
        _count_failure(request)
        if _locked(request):
            return _refuse_locked(request)
        form.add_error(
            "code", "That code did not match: check the app's clock and try the next one."
        )
    context = {
        "form": form,
        "qr": qr_data_uri(device.config_url),
        "secret": device.secret_text(),
        "next": _next(request),
    }
    return render(
        request, "accounts/factor_enrol.html", context, status=400 if form.errors else 200
    )


@never_cache
@login_required
def factor_verify(request):
    """A code from the app (or a recovery code), after sign-in or before a dangerous action."""
    if not factors.authenticator_for(request.user):
        return redirect(factors.factor_url(request, next_url=_next(request)))
    if _locked(request):
        return _refuse_locked(request)
    form = CodeForm(request.POST or None)
    step_up = request.GET.get("step_up") == "1" or request.POST.get("step_up") == "1"
    if request.method == "POST" and form.is_valid():
        actor = Actor.person(request)
        method = factors.factor_check(
            user=request.user, code=form.cleaned_data["code"], actor=actor
        )
        if method:
            factors.factor_mark_verified(request, method=method)
            record(
                actor=actor,
                action="auth.step_up" if step_up else "auth.factor_verified",
                obj=request.user,
                detail=method,
            )
            return redirect(_next(request))
        _count_failure(request)
        if _locked(request):
            return _refuse_locked(request)
        form.add_error("code", "That code did not match. Wait for the next code and try again.")
    context = {
        "form": form,
        "next": _next(request),
        "step_up": step_up,
        "minutes": settings.STEP_UP_MINUTES,
    }
    return render(
        request, "accounts/factor_verify.html", context, status=400 if form.errors else 200
    )


@never_cache
@login_required
def factor_home(request):
    """The person's own second factor: enrolled or not, recovery codes left."""
    context = {
        "device": factors.authenticator_for(request.user),
        "required": factors.factor_required(request.user),
        "codes_left": factors.recovery_codes_left(request.user),
    }
    return render(request, "accounts/factor_home.html", context)


@never_cache
@login_required
@require_POST
@factors.step_up_required
def recovery_codes_new(request):
    if not factors.authenticator_for(request.user):
        return redirect("accounts:factor_home")
    codes = factors.recovery_codes_create(user=request.user, actor=Actor.person(request))
    context = {"codes": codes, "next": "", "enrolled": False}
    return render(request, "accounts/recovery_codes.html", context)
