"""Signed, expiring links to a received payload, for the webhook notice: the receiver fetches the
body when it is ready, without an account. The link names the message and the destination it was
made for, carries its expiry, and is signed with the portal's SECRET_KEY (Django's signing: HMAC);
it works only while that destination is an enabled webhook and the payload is still stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "integrations.payload-link"


class LinkRefused(Exception):
    """The link cannot be served; `status` and the text say why, for the caller."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class Link:
    message_id: int
    destination_id: int
    expires_at: int


def link_seconds(destination) -> int:
    configured = (destination.settings or {}).get("link_ttl")
    return int(configured or settings.INTEGRATIONS_PAYLOAD_LINK_SECONDS)


def payload_link(*, destination, message, now: float | None = None) -> tuple[str, int]:
    """(absolute URL, expiry as a Unix time) of a link to `message`'s payload for `destination`."""
    expires_at = int(now or time.time()) + link_seconds(destination)
    token = signing.dumps({"m": message.pk, "d": destination.pk, "e": expires_at}, salt=SALT)
    path = reverse("integrations:payload_link", args=[token])
    return settings.INTEGRATIONS_PUBLIC_URL.rstrip("/") + path, expires_at


def read_link(token: str, now: float | None = None) -> Link:
    """The link's contents, or LinkRefused (403 not one of ours or altered, 410 expired)."""
    try:
        data = signing.loads(token, salt=SALT)
        link = Link(
            message_id=int(data["m"]), destination_id=int(data["d"]), expires_at=int(data["e"])
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkRefused(
            403, "This link is not valid: it was altered or not made by NeoMesh."
        ) from None
    if (now or time.time()) > link.expires_at:
        raise LinkRefused(
            410,
            "This link has expired. Ask the NeoMesh administrators to replay the delivery for a new one.",
        )
    return link
