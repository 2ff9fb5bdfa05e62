"""Where a mailbox's credentials may go: NHS England's published MESH hosts, or a local sandbox.

Every request carries an NHSMESH token made with the mailbox's password and the environment's shared
key; a server that receives one can replay it once and, knowing the shared key, try passwords
offline. So outside the sandbox a mailbox talks only to the published hosts of its own environment
(mesh-protocol.md, section 1, the deprecated HSCN ones included) or to a base URL the operator lists in
`MESH_ALLOWED_BASE_URLS` (a relay, say). A sandbox mailbox may use plain HTTP, so it must not become
a way to make the portal fetch arbitrary internal addresses: it reaches loopback addresses, the host of
`MESH_SANDBOX_URL` and the hosts in `MESH_SANDBOX_HOSTS` only. Host names are compared as written,
never resolved.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

# NHS England's published MESH hosts, by environment (mesh-protocol.md, section 1).
PUBLISHED_BASE_URLS = {
    "integration": ("https://msg.intspineservices.nhs.uk", "https://msg.int.spine2.ncrs.nhs.uk"),
    "deployment": ("https://msg.depspineservices.nhs.uk", "https://msg.dep.spine2.ncrs.nhs.uk"),
    "live": ("https://mesh-sync.spineservices.nhs.uk", "https://mesh-sync.national.ncrs.nhs.uk"),
}
SANDBOX = "sandbox"


def normalise(url: str) -> str:
    """One spelling of a base URL: lower-case scheme and host, default port and trailing '/' dropped."""
    parts = urlsplit((url or "").strip())
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = -1
    netloc = host if port in (None, default) else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal
        netloc = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def allowed_base_urls(environment: str) -> list[str]:
    published = list(PUBLISHED_BASE_URLS.get(environment, ()))
    configured = settings.MESH_BASE_URLS.get(environment)
    return [normalise(u) for u in [configured, *published, *settings.MESH_ALLOWED_BASE_URLS] if u]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_hosts() -> set[str]:
    hosts = {h.strip().lower() for h in settings.MESH_SANDBOX_HOSTS if h.strip()}
    sandbox_url = urlsplit(settings.MESH_SANDBOX_URL)
    if sandbox_url.hostname:
        hosts.add(sandbox_url.hostname.lower())
    return hosts


def base_url_problem(environment: str, url: str) -> str | None:
    """Why this mailbox's credentials must not be sent to `url`, in plain English; None if allowed."""
    parts = urlsplit((url or "").strip())
    try:
        _ = parts.port
    except ValueError:
        return "The base URL's port is not a number."
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "The base URL must be an http or https address."
    if parts.username or parts.password or parts.query or parts.fragment:
        return "The base URL is a scheme, a host and a port only: no user name, query or fragment."
    host = parts.hostname.lower()
    if environment == SANDBOX:
        if _is_loopback(host) or host in sandbox_hosts():
            return None
        return (
            f"A sandbox mailbox reaches only a sandbox on this machine (localhost, 127.0.0.1) or a "
            f"host the operator lists in MESH_SANDBOX_HOSTS, not {host}."
        )
    if normalise(url) in allowed_base_urls(environment):
        return None
    published = ", ".join(PUBLISHED_BASE_URLS.get(environment, ()))
    return (
        f"The {environment} environment's mailboxes connect only to NHS England's published MESH "
        f"hosts ({published}; leave the base URL blank for the first) or to a base URL the operator "
        "lists in MESH_ALLOWED_BASE_URLS. The password would otherwise go to another server."
    )
