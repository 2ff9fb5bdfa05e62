"""MESH-provided text (subject, filename, local id, sender...) is escaped on every page showing it.

Anything arriving from MESH was written by another organisation's system: it is data, never markup.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from portal.audit.services import Actor, record
from portal.messaging.models import Direction, MessageEvent, MessageType, Status
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(2)>'
HOSTILE = (SCRIPT, BREAKOUT)


class Markup(HTMLParser):
    """The tags a browser would build from the page: hostile text must not have added any."""

    def __init__(self, html: str):
        super().__init__()
        self.handlers, self.inline_scripts, self.images = [], 0, 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.inline_scripts += tag == "script" and not dict(attrs).get("src")
        self.images += tag == "img"


@pytest.fixture
def hostile(db):
    """An inbound message whose every MESH field is hostile, with a report and audit records."""
    mailbox = make_mailbox("X26ABC1")
    message = make_message(
        mailbox,
        subject=SCRIPT + BREAKOUT,
        filename=f"{SCRIPT}{BREAKOUT}.csv",
        local_id=SCRIPT,
        sender=BREAKOUT,
        workflow_id=SCRIPT,
        partner_id=BREAKOUT,
        mesh_message_id=f"ID{SCRIPT}",
        checksum=BREAKOUT,
        content_type=SCRIPT,
        mesh_status_description=BREAKOUT,
        status=Status.RECEIVED,
    )
    message.add_event(MessageEvent.Kind.DOWNLOADED, f"{SCRIPT} {BREAKOUT}")
    make_message(
        mailbox,
        direction=Direction.OUTBOUND,
        status=Status.FAILED,
        mesh_status_code="12",
        failure_reason=SCRIPT,
        recipient=BREAKOUT,
        mesh_message_id=f"OUT{BREAKOUT}",
    )
    make_message(
        mailbox,
        message_type=MessageType.REPORT,
        linked_mesh_message_id=SCRIPT,
        mesh_message_id=f"NDR{SCRIPT}",
        status=Status.ACKNOWLEDGED,
    )
    record(actor=Actor.worker(), action="message.downloaded", obj=message, detail=SCRIPT + BREAKOUT)
    return message


def pages(message) -> list[tuple[str, str]]:
    from portal.audit.models import AuditRecord

    entry = AuditRecord.objects.for_object(message).order_by("-seq").first()
    return [
        ("auditor_user", reverse("messaging:list")),
        ("auditor_user", reverse("messaging:list") + "?direction=in"),
        ("auditor_user", reverse("messaging:list") + "?direction=out"),
        ("auditor_user", reverse("messaging:list") + f"?q={SCRIPT}&sender={BREAKOUT}"),
        ("auditor_user", reverse("messaging:detail", args=[message.pk])),
        ("admin_user", reverse("messaging:detail", args=[message.pk])),
        ("admin_user", reverse("mailboxes:detail", args=[message.mailbox.pk])),
        ("admin_user", reverse("dashboard:home")),
        ("auditor_user", reverse("audit:trail")),
        ("auditor_user", reverse("audit:trail") + f"?actor={SCRIPT}&action={BREAKOUT}"),
        ("auditor_user", reverse("audit:detail", args=[entry.seq])),
    ] + [
        ("auditor_user", reverse("messaging:detail", args=[other.pk]))
        for other in type(message).objects.exclude(pk=message.pk)
    ]


def test_mesh_text_is_escaped_on_every_page_that_shows_it(client, request, hostile):
    shown = 0
    for persona, url in pages(hostile):
        client.force_login(request.getfixturevalue(persona))
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for text in HOSTILE:
            assert text not in html, f"unescaped MESH text on {url}"
        markup = Markup(html)
        assert (markup.handlers, markup.inline_scripts, markup.images) == ([], 0, 0), url
        shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert shown >= 8  # the text really was on the pages, escaped
