"""Onboarding badges and waits: text first, colour only to reinforce it."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def task_badge(task, today=None) -> str:
    """The task's status; an overdue task says so in words as well as in red."""
    kind = task.status_kind(today)
    text = task.get_status_display()
    if kind == "overdue":
        text = f"Overdue · {text}"
    return format_html('<span class="badge task-status task-{}">{}</span>', kind, text)


@register.simple_tag
def correspondence_wait(correspondence, today=None) -> str:
    """'3 of 5 working days', against NHS England's published turnaround (or our estimate)."""
    waited = correspondence.working_days_waited(today)
    if waited is None:
        return format_html('<span class="badge task-status task-todo">{}</span>', "Not sent yet")
    days = correspondence.turnaround_days
    basis = "published turnaround" if correspondence.turnaround_published else "our estimate"
    unit = "working day" if waited == 1 else "working days"
    if days is None:
        return format_html("{} {}", waited, unit)
    replied = correspondence.replied_at is not None
    late = waited > days
    kind = "overdue" if late and not replied else ("ok" if replied else "waiting")
    verb = "Replied after" if replied else "Waiting"
    text = f"{verb} {waited} {unit} of {days} ({basis})"
    if late:
        text += f", {waited - days} past it"
    return format_html('<span class="badge task-status task-{}">{}</span>', kind, text)


@register.simple_tag
def evidence_badge(evidence, today=None) -> str:
    today = today or timezone.localdate()
    if evidence.withdrawn_at is not None:
        return format_html(
            '<span class="badge task-status task-na">Withdrawn {}: invalidated by NHS England\'s '
            "answer</span>",
            timezone.localdate(evidence.withdrawn_at).strftime("%-d %b %Y"),
        )
    if evidence.review_date is None:
        return ""
    if evidence.is_lapsed(today):
        return format_html(
            '<span class="badge task-status task-overdue">Lapsed {}</span>',
            evidence.review_date.strftime("%-d %b %Y"),
        )
    kind = "progress" if evidence.review_soon(today) else "ok"
    return format_html(
        '<span class="badge task-status task-{}">Review by {}</span>',
        kind,
        evidence.review_date.strftime("%-d %b %Y"),
    )


@register.filter
def percent(done: int, total: int) -> int:
    return round(100 * done / total) if total else 0
