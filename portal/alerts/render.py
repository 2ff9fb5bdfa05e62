"""What each channel receives. Event text is untrusted (a subject comes from another organisation):
escaped for HTML in email, for Slack's mrkdwn, for the Markdown of Teams cards, and sent as data
(never markup) in the signed webhook's JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from portal.events.kinds import KINDS

# Markdown's special characters in Teams' Adaptive Card TextBlocks, escaped with a backslash.
_TEAMS_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Content:
    purpose: str  # alert, resolved, test, digest
    title: str
    lines: list[dict]  # each: severity, summary, kind, at, repeats
    link: str


def plain(text: str) -> str:
    """One line, no control characters (no header injection in a subject line)."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def inbox_link() -> str:
    base = settings.ALERTS_PORTAL_URL.rstrip("/")
    return f"{base}/alerts/" if base else ""


def for_alert(alert, purpose: str) -> Content:
    if purpose == "resolved":
        title = f"Resolved: {plain(alert.resolved_summary or alert.summary)}"
    else:
        title = f"{alert.get_severity_display()}: {plain(alert.summary)}"
    line = {
        "severity": alert.get_severity_display(),
        "summary": plain(alert.summary),
        "kind": alert.kind,
        "what": KINDS.get(alert.kind, ""),
        "at": alert.created_at,
        "repeats": alert.repeats,
        "resolved": plain(alert.resolved_summary) if alert.resolved_at else "",
    }
    return Content(purpose, title, [line], inbox_link())


def for_digest(alerts) -> Content:
    lines = [for_alert(alert, "alert").lines[0] for alert in alerts]
    return Content("digest", f"NeoMesh daily digest: {len(lines)} alert(s)", lines, inbox_link())


def email_parts(content: Content) -> tuple[str, str, str]:
    """Subject, text body, HTML body (the template autoescapes every value)."""
    subject = plain(f"[NeoMesh] {content.title}")[:200]
    context = {"content": content}
    text = render_to_string("alerts/email.txt", context)
    html = render_to_string("alerts/email.html", context)
    return subject, text, html


def slack_escape(text: str) -> str:
    """Slack's documented escaping: &, < and > (so no <link|label> or @channel mention forms)."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(content: Content) -> dict:
    # The blocks are plain_text: Slack renders them literally, so *bold* or links cannot be smuggled.
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": plain(content.title)[:150]}}
    ]
    for line in content.lines[:40]:
        blocks.append(
            {"type": "section", "text": {"type": "plain_text", "text": _line(line)[:2900]}}
        )
    if content.link:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "plain_text", "text": f"Alerts inbox: {content.link}"},
            }
        )
    return {"text": slack_escape(content.title)[:300], "blocks": blocks}


def teams_escape(text: str) -> str:
    return _TEAMS_MARKDOWN.sub(r"\\\1", plain(text))


def teams_payload(content: Content) -> dict:
    body = [
        {"type": "TextBlock", "text": teams_escape(content.title), "weight": "Bolder", "wrap": True}
    ]
    body += [
        {"type": "TextBlock", "text": teams_escape(_line(line)), "wrap": True}
        for line in content.lines[:40]
    ]
    actions = (
        [{"type": "Action.OpenUrl", "title": "Open the alerts inbox", "url": content.link}]
        if content.link
        else []
    )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def webhook_payload(content: Content, alert=None) -> dict:
    payload = {
        "purpose": content.purpose,
        "title": content.title,
        "link": content.link,
        "alerts": [{**line, "at": line["at"].isoformat()} for line in content.lines],
    }
    if alert is not None:
        payload["alert"] = {
            "id": alert.pk,
            "event_seq": alert.event_seq,
            "kind": alert.kind,
            "severity": alert.severity,
            "summary": alert.summary,
            "problem_key": alert.problem_key,
            "mailbox_id": alert.mailbox_id,
            "message_id": alert.message_id,
            "workflow": alert.workflow,
            "data": alert.data,
            "resolved": alert.resolved_at is not None,
        }
    return payload


def _line(line: dict) -> str:
    text = f"{line['severity']}: {line['summary']}"
    if line.get("repeats"):
        text += f" (and {line['repeats']} more time(s))"
    if line.get("resolved"):
        text += f" Resolved: {line['resolved']}"
    return text
