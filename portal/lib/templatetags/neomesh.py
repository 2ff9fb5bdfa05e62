"""The portal's building blocks as template tags: badges with text, never colour alone."""

from __future__ import annotations

import re

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

register = template.Library()

# ok (green), attention (amber), failed (red), waiting (blue), na (grey).
KINDS = {"ok", "attention", "failed", "waiting", "na"}

MESSAGE_STATUS_KINDS = {
    "queued": "waiting",
    "sending": "waiting",
    "accepted": "waiting",
    "acknowledged": "ok",
    "failed": "failed",
    "uncertain": "attention",
    "received": "waiting",
}

CERTIFICATE_STATUS_KINDS = {
    "awaiting": "waiting",
    "active": "ok",
    "superseded": "na",
    "expired": "failed",
}

WARN_WITHIN_DAYS = 90


@register.simple_tag
def env_badge(value) -> str:
    """SANDBOX, INTEGRATION, DEPLOYMENT in grey or blue; LIVE in red. Accepts a mailbox or a value."""
    environment = getattr(value, "environment", value) or ""
    return format_html('<span class="badge env env-{}">{}</span>', environment, environment.upper())


@register.simple_tag
def status_badge(kind: str, text: str) -> str:
    kind = kind if kind in KINDS else "na"
    return format_html('<span class="badge status-{}">{}</span>', kind, text)


@register.simple_tag
def message_status(message) -> str:
    return status_badge(
        MESSAGE_STATUS_KINDS.get(message.status, "na"), message.get_status_display()
    )


@register.simple_tag
def certificate_status(certificate) -> str:
    kind = CERTIFICATE_STATUS_KINDS.get(certificate.status, "na")
    return status_badge(kind, certificate.get_status_display())


@register.simple_tag
def days_left_badge(days: int | None) -> str:
    """Certificate days left: red when expired, amber from 90 days, green otherwise."""
    if days is None:
        return status_badge("na", "No certificate")
    if days < 0:
        return status_badge("failed", "Expired")
    label = "1 day left" if days == 1 else f"{days} days left"
    return status_badge("attention" if days <= WARN_WITHIN_DAYS else "ok", label)


@register.simple_tag
def health_badge(ok: bool | None, when) -> str:
    """A handshake or poll result: never tried, succeeded or failed."""
    if when is None or ok is None:
        return status_badge("na", "Never")
    return status_badge("ok", "OK") if ok else status_badge("failed", "Failed")


@register.inclusion_tag("_progress.html")
def progress(done: int, total: int, label: str = "Chunk") -> dict:
    return {"done": done, "total": total, "label": label}


@register.filter
def ago(value) -> str:
    """'3 hours ago', or 'just now' inside a minute (timesince would say '0 minutes')."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


# A worker's id as written in claims and records: `host:pid:thread` (portal.lib.workers), or
# `worker host:pid` (audit actors). A host starts with a letter, so times (12:30:05) never match;
# a `host:port` alone (an address in an error message) has no thread and no "worker" before it.
WORKER_ID = re.compile(
    r"\b(?:[Ww]orker (?P<host>[A-Za-z][\w.-]*):\d+(?::\d+)?"
    r"|(?P<bare>[A-Za-z][\w.-]*):\d+:\d+)\b"
)


@register.filter
def workers(text) -> str:
    """Worker ids in `text` shown as people read them, "worker on vm", the full id in a title."""
    text = str(text or "")
    parts, last = [], 0
    for found in WORKER_ID.finditer(text):
        host = found["host"] or found["bare"]
        parts.append(escape(text[last : found.start()]))
        parts.append(format_html('<span title="{}">worker on {}</span>', found[0], host))
        last = found.end()
    parts.append(escape(text[last:]))
    return mark_safe("".join(str(part) for part in parts))  # noqa: S308 - every part escaped


@register.filter
def filters_in_use(form) -> int:
    """How many of a filter form's fields were given a value (for "Filters (2 in use)")."""
    if not getattr(form, "is_bound", False):
        return 0
    return sum(1 for name in form.fields if any(v.strip() for v in form.data.getlist(name)))
