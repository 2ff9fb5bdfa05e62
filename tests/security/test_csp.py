"""A strict content security policy on every page, and templates that need nothing inline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def header_of(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize(
    ("persona", "name"),
    [
        (None, "accounts:login"),
        ("admin_user", "dashboard:home"),
        ("admin_user", "mailboxes:list"),
        ("auditor_user", "messaging:list"),
        ("auditor_user", "audit:trail"),
        ("admin_user", "messaging:send"),
    ],
)
def test_every_page_carries_a_strict_policy(client, request, persona, name):
    make_mailbox("X26ABC1")
    if persona:
        client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse(name))
    assert response.status_code == 200
    policy = header_of(response)
    assert policy["default-src"] == "default-src 'self'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["style-src"] == "style-src 'self'"
    assert policy["object-src"] == "object-src 'none'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


def test_error_pages_carry_the_policy_too(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "Content-Security-Policy" in response


# Rendered only into files people download (never served as a page, so no CSP applies), and
# self-contained on purpose: an evidence pack's report is opened from disk, offline.
# Self-contained documents the site never serves, so its CSP never applies: a downloaded report,
# and the HTML part of alert emails (mail clients read only inline styles).
DOWNLOADED_FILES = {"conformance/report_standalone.html", "alerts/email.html"}


def templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.svg"))
    return [path for path in found if str(path.relative_to(TEMPLATES)) not in DOWNLOADED_FILES]


def test_self_contained_templates_are_never_rendered_by_a_view():
    views = [
        *Path(settings.BASE_DIR, "portal").rglob("views.py"),
        *Path(settings.BASE_DIR, "portal").rglob("views/*.py"),
    ]
    for name in DOWNLOADED_FILES:
        assert (TEMPLATES / name).exists(), f"{name} is gone: drop it from DOWNLOADED_FILES"
        assert not [view for view in views if name in view.read_text()], name


def test_there_are_templates_to_scan():
    assert len(templates()) > 30


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        (INLINE_SCRIPT, "an inline <script>"),
        (STYLE_ATTRIBUTE, "a style= attribute"),
        (STYLE_ELEMENT, "a <style> element"),
        (EVENT_HANDLER, "an inline event handler"),
        (JAVASCRIPT_URL, "a javascript: URL"),
    ],
    ids=["script", "style-attribute", "style-element", "event-handler", "javascript-url"],
)
def test_no_template_relies_on_inline_code(pattern, what):
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in templates()
        for text in [path.read_text()]
        for match in pattern.finditer(text)
    ]
    assert offenders == [], f"{what} in {offenders}: the CSP blocks it; use static/js or static/css"
