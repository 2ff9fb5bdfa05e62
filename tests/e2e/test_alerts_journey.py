"""An alert appears in the inbox, a person acknowledges it, and the top bar's count drops."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser

RAISE = (
    "from portal.events.services import event_emit, events_dispatch; events_dispatch(); "
    "event_emit(kind='message.send_failed', severity='error', "
    "summary='Send of message JOURNEY-{n} <b>to</b> X26ABC2 failed: refused'); events_dispatch()"
)


def _count(page) -> int:
    return int(page.locator("[data-alert-count]").inner_text())


def test_an_alert_is_acknowledged_in_the_inbox_and_the_count_drops(stack, page):
    sign_in(page, stack, "mailbox-admin")
    before = _count(page)
    stack.manage("shell", "-c", RAISE.format(n=1))
    page.reload()
    expect(page.locator("[data-alert-count]")).to_have_text(str(before + 1))
    page.get_by_role("link", name=re.compile("^Alerts")).first.click()
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="JOURNEY-1")
    # Hostile markup in the summary is shown as text, never rendered.
    expect(row.get_by_text("<b>to</b>", exact=False)).to_be_visible()
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="JOURNEY-1")).to_have_count(0)
    expect(page.locator("[data-alert-count]")).to_have_text(str(before))
