"""Who may call the API: a token (Authorization: Bearer) or a signed-in person with CSRF.

Tokens work only here: the HTML pages authenticate by session alone, so a token sent to them is
ignored and the caller is sent to the sign-in page.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, negotiation, throttling

from portal.accounts import reach
from portal.lib.http import client_ip

from .models import ApiToken, Scope
from .services import TokenRefused, token_actor, token_authenticate

# What a signed-in person needs, per scope (every mailbox, every workflow: as on the pages).
SCOPE_PERMISSIONS = {
    Scope.MESSAGES_SEND: ("messaging.send_message",),
    Scope.MESSAGES_READ: ("messaging.view_message",),
    Scope.PAYLOADS_READ: ("messaging.view_message", "messaging.download_payload"),
    Scope.EVENTS_READ: ("messaging.view_message",),
}


class TokenUser:
    """request.user for a token call: authenticated, no model permissions, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = id = None

    def __init__(self, token: ApiToken):
        self.token = self.api_token = token

    def __str__(self) -> str:
        return f"API token {self.token}"

    def get_username(self) -> str:
        return str(self)

    def has_perms(self, perms) -> bool:
        return False


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            token = token_authenticate(presented=presented.strip(), ip=client_ip(request))
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        # Read by the audit of every call (views.audited), outside DRF's request wrapper.
        request._request.api_actor = token_actor(token, client_ip(request))
        return TokenUser(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="NeoMesh API"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "nmk_<key id>_<secret>"}


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's (a signed-in person, CSRF enforced on unsafe methods), checked on Django's request.

    DRF's own hands its request to the CSRF check, whose `request.POST` makes DRF parse the body:
    a 415 for a raw upload, or a whole body read into memory.
    """

    def enforce_csrf(self, request):
        return super().enforce_csrf(request._request)


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = SessionAuthentication
    name = "portalSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A signed-in person; unsafe methods need X-CSRFToken.",
        }


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Each token's own rate (ApiToken.rate_per_minute), counted in the default cache."""

    scope = "api_token"
    rate = "600/min"  # replaced per token in allow_request

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True
        self.num_requests, self.duration = request.auth.rate_per_minute, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return f"api-throttle-{request.auth.pk}"


def caller_actor(request):
    """The audit hook for this call: the token, or None for a person (the services record them)."""
    return getattr(request._request, "api_actor", None)


def require_scope(request, scope: str, *, mailbox=None, workflow_id: str | None = None) -> None:
    """403 unless the caller holds `scope` (for this mailbox and workflow, when given)."""
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is None:
        if not request.user.has_perms(SCOPE_PERMISSIONS[scope]):
            raise PermissionDenied(f"Your account may not use {scope}: ask an administrator.")
        return
    grant = token.grant_for(scope)
    if grant is None:
        raise PermissionDenied(f"This token does not have the {scope} scope.")
    covered = reach.mailboxes_for_token(token, scope=scope)
    if mailbox is not None and not covered.filter(pk=mailbox.pk).exists():
        raise PermissionDenied(
            f"This token's {scope} scope does not cover mailbox {mailbox.mailbox_id}."
        )
    if workflow_id is not None and scope != Scope.MESSAGES_SEND:
        if not grant.allows_workflow(workflow_id):
            raise PermissionDenied(
                f"This token's {scope} scope does not cover workflow {workflow_id}."
            )


def visible_messages(request, scope: str, queryset):
    """The messages a caller may see under `scope`: a token's mailboxes and workflow patterns."""
    require_scope(request, scope)
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is None:
        return queryset.within_reach(request.user)
    grant = token.grant_for(scope)
    covered = reach.mailboxes_for_token(token, scope=scope).values("pk")
    return queryset.filter(grant.workflow_q(), mailbox__in=covered)


class JsonOnlyNegotiation(negotiation.DefaultContentNegotiation):
    """JSON whatever the Accept header says: payload downloads answer in bytes by themselves, and a
    caller asking for `application/octet-stream` still gets its errors as problem details."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def visible_events(request, queryset):
    """Events a caller may read: a token's mailboxes (and workflow patterns) only."""
    require_scope(request, Scope.EVENTS_READ)
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is None:
        return reach.within_reach(queryset, request.user, mailbox="mailbox_id")
    grant = token.grant_for(Scope.EVENTS_READ)
    covered = reach.mailboxes_for_token(token, scope=Scope.EVENTS_READ).values("pk")
    return queryset.filter(grant.workflow_q("workflow"), mailbox_id__in=covered)
