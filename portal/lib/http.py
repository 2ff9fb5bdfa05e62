"""Request helpers every app's views share: the client's trusted address and the permission decorator.

The client's address, as far as it can be trusted, is the one helper every audit record, the model
change log and the sign-in throttle use.

`X-Forwarded-For` is written by the client unless a proxy we run rewrites it, so it is read only
when `TRUSTED_PROXY_COUNT` says how many of our proxies stand in front of Django: each appends the
address it was reached from, so the client is the entry that many places from the right. Anything
to its left came from the client and is ignored. Without proxies the address is `REMOTE_ADDR`.

`permission_required`: sign-in first, then a permission; lacking it is a 403, not a redirect.
"""

from __future__ import annotations

import ipaddress
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def normalise_ip(value) -> str | None:
    """One spelling per address (lower-case, compressed IPv6, IPv4 unwrapped), or None if invalid.

    The audit seal hashes the text before the database stores it, so the text must already be what
    the database gives back: PostgreSQL's inet and Django's own cleaning both rewrite other forms.
    """
    text = str(value or "").strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:].split("]")[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text.split("%")[0])  # no IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def client_ip(request) -> str | None:
    """The address of the client that sent `request`, normalised; None when there is none."""
    if request is None:
        return None
    meta = request.META
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        forwarded = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [hop for hop in forwarded if hop]
        if len(forwarded) >= proxies:
            return normalise_ip(forwarded[-proxies])
    return normalise_ip(meta.get("REMOTE_ADDR"))


def permission_required(*perms: str):
    """Anonymous users go to the login page; signed-in users without every permission get 403.

    Django's own decorator sends signed-in users back to the login page, which reads like a broken
    session to the person refused. This one says "not allowed" instead.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
