"""A mailbox admin meets a message that cannot be received: shown, retried, then left in MESH."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.messaging.helpers import gzip_bomb, raw_send

from .conftest import sign_in

pytestmark = pytest.mark.browser


class _Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url


def test_a_mailbox_admin_retries_then_leaves_a_quarantined_message(stack, browser, page):
    sandbox = _Sandbox(f"http://127.0.0.1:{stack.sandbox_port}")
    bomb_id = raw_send(sandbox, gzip_bomb(32 * 1024 * 1024), **{"Content-Encoding": "gzip"})
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, stack, "mailbox-admin")

    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="X26ABC2").first.click()
    page.get_by_role("button", name="Poll now").click()
    expect(page.get_by_text(re.compile(r"quarantined for a person")).first).to_be_visible(
        timeout=30_000
    )
    page.reload()
    panel = page.get_by_role("region", name="Inbound messages not received")
    row = panel.get_by_role("row").filter(has_text=bomb_id)
    expect(row).to_contain_text("Quarantined")
    expect(row).to_contain_text("max_expansion_ratio")

    row.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.get_by_text(f"{bomb_id} will be tried again at the next poll.")).to_be_visible()
    page.get_by_role("button", name="Poll now").click()  # refused again: the limit still holds
    expect(page.get_by_text(re.compile(r"quarantined for a person")).first).to_be_visible(
        timeout=30_000
    )
    page.reload()
    row = page.get_by_role("region", name="Inbound messages not received").get_by_role("row")
    row.filter(has_text=bomb_id).get_by_role("button", name=re.compile("Leave in MESH")).click()
    expect(page.get_by_text(f"{bomb_id} is left in MESH and will not be received.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=bomb_id)).to_have_count(0)

    auditor = browser.new_context().new_page()  # the auditor sees who left it, and why
    sign_in(auditor, stack, "auditor")
    auditor.goto(stack.url + "/audit/?action=message.quarantine_left")
    expect(auditor.get_by_text(bomb_id).first).to_be_visible()
    expect(auditor.get_by_text("mailbox-admin").first).to_be_visible()
    auditor.context.close()
