"""Badges for runs and scenario outcomes, built on the portal's status badge (text, not colour)."""

from __future__ import annotations

from django import template

from portal.lib.templatetags.neomesh import status_badge

register = template.Library()

OUTCOME_KINDS = {
    "passed": "ok",
    "failed": "failed",
    "not_applicable": "na",
    "pending": "waiting",
    "running": "waiting",
    "not_run": "attention",
}
RUN_KINDS = {
    "queued": "waiting",
    "running": "waiting",
    "passed": "ok",
    "failed": "failed",
    "error": "failed",
}


@register.simple_tag
def outcome_badge(result) -> str:
    return status_badge(OUTCOME_KINDS.get(result.outcome, "na"), result.get_outcome_display())


@register.simple_tag
def run_badge(run) -> str:
    return status_badge(RUN_KINDS.get(run.status, "na"), run.get_status_display())


@register.filter
def mex_headers(headers: dict | None) -> list[tuple[str, str]]:
    """The headers worth showing in evidence: mex-*, content and user agent, Authorization (redacted)."""
    shown = ("mex-", "content-", "authorization", "user-agent", "accept")
    return sorted(
        (name, value) for name, value in (headers or {}).items() if name.lower().startswith(shown)
    )


@register.filter
def seconds(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "–"
    return f"{milliseconds / 1000:.2f} s"


@register.filter
def shown(value) -> str:
    """A measurement for people: lists joined, nothing as a dash."""
    if value is None or value == "":
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "–"
    return str(value)
