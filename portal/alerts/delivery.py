"""Delivering one rendered alert to one channel: Django's SMTP backend, or one HTTPS POST.

Hand-written rather than through apprise (see README): the generic webhook must be signed
(HMAC-SHA256 over timestamp and body), no channel may follow a redirect, every call is bounded in
time, and we choose each format's escaping ourselves (Slack plain_text blocks, escaped Markdown in
Teams cards). The three formats are a few lines each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from . import render
from .models import Channel, split_addresses


class DeliveryFailed(Exception):
    """The channel refused or could not be reached; the text says why, for a person."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliver(channel: Channel, content: render.Content, alert=None) -> None:
    if channel.kind == Channel.Kind.EMAIL:
        return _email(channel, content)
    if channel.kind == Channel.Kind.SLACK:
        payload = render.slack_payload(content)
    elif channel.kind == Channel.Kind.TEAMS:
        payload = render.teams_payload(content)
    else:
        payload = render.webhook_payload(content, alert)
    return _post(channel, json.dumps(payload, default=str).encode())


def _email(channel: Channel, content: render.Content) -> None:
    subject, text, html = render.email_parts(content)
    message = EmailMultiAlternatives(
        subject,
        text,
        settings.DEFAULT_FROM_EMAIL,
        split_addresses(channel.recipients),
        connection=get_connection(timeout=settings.ALERTS_SEND_TIMEOUT_SECONDS),
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception as exc:  # noqa: BLE001 - SMTP errors, refused connections, timeouts alike
        raise DeliveryFailed(
            f"The mail server did not take it ({type(exc).__name__}: {exc})"[:500]
        ) from None


def _post(channel: Channel, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "NeoMesh alerts"}
    if channel.kind == Channel.Kind.WEBHOOK:
        timestamp = str(int(time.time()))
        headers["X-NeoMesh-Timestamp"] = timestamp
        headers["X-NeoMesh-Signature"] = sign(channel.secret, timestamp, body)
    try:
        response = requests.post(
            channel.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            stream=True,
            timeout=(5, settings.ALERTS_SEND_TIMEOUT_SECONDS),
        )
        response.close()
    except requests.Timeout:
        raise DeliveryFailed(
            f"The webhook did not answer within {settings.ALERTS_SEND_TIMEOUT_SECONDS} seconds"
        ) from None
    except requests.RequestException as exc:
        raise DeliveryFailed(f"The webhook could not be reached ({type(exc).__name__})") from None
    if 300 <= response.status_code < 400:
        raise DeliveryFailed(
            f"The webhook answered with a redirect ({response.status_code}); redirects are not "
            "followed: put the final address in the channel"
        )
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"The webhook refused it (HTTP {response.status_code})")
