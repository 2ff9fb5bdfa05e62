"""A record of one HTTP attempt, for callers that keep evidence of what went over the wire.

``MeshClient(..., on_exchange=callback)`` calls ``callback(Exchange)`` once per HTTP attempt,
retries included, from the client's single HTTP seam. An Exchange never holds a body (downloads
stay streamed; a caller that needs payload sizes and hashes computes them itself) and never a
secret: the Authorization header keeps only its scheme and mailbox id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

REDACTED = "<redacted>"
# Request headers whose values never leave the client.
_SECRET_REQUEST_HEADERS = {"authorization", "proxy-authorization", "cookie"}
# Response headers worth keeping: MESH's own, and what says how the body was sent.
_KEPT_RESPONSE_HEADERS = {"content-length", "content-encoding", "content-type"}


@dataclass(frozen=True)
class Exchange:
    """One HTTP attempt: what was asked and what MESH answered (no bodies, no secrets).

    ``status`` is None when no response arrived (connection refused, timeout, TLS failure);
    ``error`` then says why. For an unexpected status ``error`` is the mapped MeshError's text.
    ``elapsed_ms`` runs until the response headers arrived: a streamed download's body is read
    after the exchange is reported.
    """

    method: str
    path: str
    query: str = ""
    status: int | None = None
    error: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and not self.error

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "error": self.error,
            "request_headers": dict(self.request_headers),
            "response_headers": dict(self.response_headers),
            "elapsed_ms": self.elapsed_ms,
        }


ExchangeCallback = Callable[[Exchange], None]


def redact_authorization(value: str) -> str:
    """``NHSMESH X26ABC1:nonce:count:time:hmac`` -> ``NHSMESH X26ABC1:<redacted>``."""
    scheme, _, token = (value or "").partition(" ")
    mailbox = token.split(":", 1)[0] if ":" in token else ""
    if scheme and mailbox and mailbox.isalnum():
        return f"{scheme} {mailbox}:{REDACTED}"
    return REDACTED


def safe_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    safe = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "authorization":
            safe[name] = redact_authorization(str(value))
        elif lower in _SECRET_REQUEST_HEADERS:
            safe[name] = REDACTED
        else:
            safe[name] = str(value)
    return safe


def kept_response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: str(value)
        for name, value in headers.items()
        if name.lower().startswith("mex-") or name.lower() in _KEPT_RESPONSE_HEADERS
    }


def split_url(url: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
    """The path (no scheme or host) and query string of a request URL."""
    parts = urlsplit(url)
    query = parts.query
    if params:
        extra = urlencode({k: v for k, v in params.items() if v is not None})
        query = f"{query}&{extra}" if query else extra
    return parts.path or "/", query
