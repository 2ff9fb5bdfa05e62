"""Sign-in (passwords and single sign-on), sign-out, and the lockouts admins lift (all audited)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import OAuthError
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from joserfc.errors import JoseError

from portal.lib.http import client_ip, normalise_ip, permission_required

from . import factors, sso
from .forms import SignInForm
from .services import (
    signin_lockouts,
    signin_unlock,
    sso_refusal_record,
    sso_signin,
    sso_signout_record,
)

logger = logging.getLogger(__name__)

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


# Sign-in and sign-out, with single sign-on beside passwords (portal/accounts/sso.py).
SSO_ID_TOKEN, SSO_ISSUER, SSO_NEXT = "sso_id_token", "sso_issuer", "sso_next"


class SignInView(auth_views.LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            sso_enabled=sso.enabled(),
            sso_name=sso.provider_name(),
            local_accounts=settings.LOCAL_ACCOUNTS_ENABLED,
        )
        return context


def _next_url(request, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _sso_problem(request, title: str, message: str, status: int):
    context = {"title": title, "message": message, "sso_name": sso.provider_name()}
    return render(request, "accounts/sso_problem.html", context, status=status)


def _unreachable(request):
    return _sso_problem(
        request,
        "The identity provider cannot be reached",
        f"NeoMesh could not reach {sso.provider_name()} just now. Try again in a few minutes; "
        "if it goes on, tell your NeoMesh administrator.",
        503,
    )


def sso_login(request):
    """Off to the provider: authorization code with PKCE, state and nonce kept in the session."""
    if not sso.enabled():
        raise Http404("Single sign-on is not configured.")
    request.session[SSO_NEXT] = _next_url(request, request.GET.get("next", ""))
    extra = {"acr_values": settings.OIDC_ACR_VALUES} if settings.OIDC_ACR_VALUES else {}
    try:
        sso.metadata()
        return sso.client().authorize_redirect(
            request, request.build_absolute_uri(reverse("accounts:sso_callback")), **extra
        )
    except sso.SsoRefused as refusal:
        return _sso_problem(request, "Single sign-on is misconfigured", refusal.message, 503)
    except (requests.RequestException, ValueError):
        logger.warning("OIDC discovery at %s failed", settings.OIDC_ISSUER, exc_info=True)
        return _unreachable(request)


def sso_callback(request):
    """Back from the provider: the code exchanged, the ID token checked, the claims decide."""
    if not sso.enabled():
        raise Http404("Single sign-on is not configured.")
    ip = client_ip(request)
    issuer = settings.OIDC_ISSUER
    provider = sso.client()
    try:
        metadata = sso.metadata()
        token = provider.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if not claims or not token.get("id_token"):
            raise OAuthError(description="The provider answered without an ID token.")
        if settings.OIDC_USERINFO and metadata.get("userinfo_endpoint"):
            extra = dict(provider.userinfo(token=token))
            if extra.get("sub") != claims.get("sub"):
                raise OAuthError(description="The userinfo answer is about someone else.")
            # The signed ID token's claims win over the userinfo answer's.
            claims = {**extra, **claims}
    except (AuthlibBaseError, JoseError) as error:
        if request.GET.get("error") == "access_denied":
            return _sso_problem(
                request,
                "Sign-in cancelled",
                f"The sign-in with {sso.provider_name()} was cancelled. You can try again.",
                400,
            )
        # A stale or forged callback (no state of ours, a bad token): not a person's refusal.
        logger.warning("OIDC callback refused: %s", error)
        return _sso_problem(
            request,
            "Sign-in did not complete",
            f"The sign-in with {sso.provider_name()} could not be completed (it may have taken "
            "too long, or been started in another window). Start again from the sign-in page.",
            400,
        )
    except sso.SsoRefused as refusal:
        return _sso_problem(request, "Single sign-on is misconfigured", refusal.message, 503)
    except (requests.RequestException, ValueError):
        logger.warning("OIDC token exchange with %s failed", issuer, exc_info=True)
        return _unreachable(request)
    try:
        user = sso_signin(decision=sso.claims_decide(claims), issuer=issuer, ip=ip)
    except sso.SsoRefused as refusal:
        sso_refusal_record(refusal=refusal, issuer=issuer, ip=ip)
        context = {"message": refusal.message, "sso_name": sso.provider_name()}
        return render(request, "accounts/sso_refused.html", context, status=403)
    next_url = request.session.pop(SSO_NEXT, "") or resolve_url(settings.LOGIN_REDIRECT_URL)
    auth.login(request, user, backend="portal.accounts.backends.AccountBackend")
    if factors.oidc_asserted_mfa(claims):
        # The provider checked a second factor (its `amr` says so): no local code is asked for.
        factors.factor_mark_verified(request, method=factors.METHOD_OIDC)
    request.session[SSO_ID_TOKEN] = token["id_token"]
    request.session[SSO_ISSUER] = issuer
    return redirect(next_url)


@require_POST
def sign_out(request):
    """Sign out of NeoMesh and, after single sign-on, of the provider too where it supports it."""
    id_token = request.session.get(SSO_ID_TOKEN)
    issuer = request.session.get(SSO_ISSUER)
    user = request.user
    end_session = None
    if id_token and issuer and settings.OIDC_END_PROVIDER_SESSION and sso.enabled():
        try:
            endpoint = sso.metadata().get("end_session_endpoint")
        except (sso.SsoRefused, requests.RequestException, ValueError):
            endpoint = None
        if endpoint:
            query = urlencode(
                {
                    "id_token_hint": id_token,
                    "client_id": settings.OIDC_CLIENT_ID,
                    "post_logout_redirect_uri": request.build_absolute_uri(
                        resolve_url(settings.LOGOUT_REDIRECT_URL)
                    ),
                }
            )
            end_session = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
    if user.is_authenticated and issuer:
        sso_signout_record(
            user=user,
            issuer=issuer,
            provider_session_ended=bool(end_session),
            ip=client_ip(request),
        )
    auth.logout(request)
    return redirect(end_session or resolve_url(settings.LOGOUT_REDIRECT_URL))
