"""What every page's frame needs: the navigation the user may use, and who they are."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from .roles import role_names

# (label, URL names tried in order, permission needed). Onboarding and Audit arrive with their own
# issues: their entries appear once one of their URL names exists.
NAV_ITEMS = [
    ("Dashboard", ("dashboard:home",), "mailboxes.view_mailbox"),
    ("Mailboxes", ("mailboxes:list",), "mailboxes.view_mailbox"),
    ("Messages", ("messaging:list",), "messaging.view_message"),
    ("Certificates", ("certificates:list",), "certificates.view_certificate"),
    (
        "Onboarding",
        ("onboarding:list", "onboarding:home", "onboarding:plans"),
        "onboarding.view_plan",
    ),
    ("Conformance", ("conformance:list",), "conformance.view_conformancerun"),
    ("Audit", ("audit:list", "audit:home", "audit:trail"), "audit.view_auditrecord"),
    ("Integrations", ("integrations:list",), "integrations.view_route"),
    ("API tokens", ("api_tokens:list",), "api.view_apitoken"),
    ("Alerts", ("alerts:inbox",), "mailboxes.view_mailbox"),
    ("People", ("accounts:people",), "auth.view_user"),
]


def safe_reverse(*names: str) -> str | None:
    """The URL of the first name that exists, or None."""
    for name in names:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def navigation(request) -> dict:
    """The left navigation: only the items the signed-in user may use, and their roles."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_roles": []}
    match = getattr(request, "resolver_match", None)
    current = match.namespace if match else ""
    items = []
    for label, names, perm in NAV_ITEMS:
        url = safe_reverse(*names) if user.has_perm(perm) else None
        if url:
            items.append({"label": label, "url": url, "current": names[0].split(":")[0] == current})
    if user.is_superuser:
        items.append({"label": "Django admin", "url": reverse("admin:index"), "current": False})
    return {"nav_items": items, "user_roles": role_names(user)}
