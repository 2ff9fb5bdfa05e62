"""The client's address, as far as it can be trusted: the one helper every audit record, the model
change log and the sign-in throttle use.

`X-Forwarded-For` is written by the client unless a proxy we run rewrites it, so it is read only
when `TRUSTED_PROXY_COUNT` says how many of our proxies stand in front of Django: each appends the
address it was reached from, so the client is the entry that many places from the right. Anything
to its left came from the client and is ignored. Without proxies the address is `REMOTE_ADDR`.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


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
