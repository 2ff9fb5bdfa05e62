"""The dashboard and the mailbox page refresh their live parts by themselves, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser

# A disabled mailbox of its own: the workers neither poll nor handshake it, so only the test
# changes it, and no other journey sees it.
CREATE = (
    "from portal.mailboxes.models import Mailbox, Organisation\n"
    "Mailbox.objects.get_or_create(mailbox_id='X26LIV9', defaults=dict("
    "organisation=Organisation.objects.get(ods_code='X26'), environment='sandbox', "
    "name='Before', enabled=False))"
)
CHANGE = (
    "from portal.mailboxes.models import Mailbox\n"
    "Mailbox.objects.filter(mailbox_id='X26LIV9').update(name='Renamed meanwhile', "
    "inbox_backlog=7)"
)


def test_the_dashboard_and_the_mailbox_page_update_without_a_reload(stack, browser):
    stack.manage("shell", "-c", CREATE)
    context = browser.new_context()
    dashboard, detail = context.new_page(), context.new_page()
    try:
        sign_in(dashboard, stack, "mailbox-admin")
        dashboard.goto(stack.url + "/")
        detail.goto(stack.url + "/mailboxes/")
        detail.get_by_role("link", name="X26LIV9").click()
        expect(detail.locator("#live-health")).to_contain_text("Not known yet")
        for page in (dashboard, detail):
            page.evaluate("window.sameDocument = true")
        stack.manage("shell", "-c", CHANGE)
        expect(dashboard.locator("#live-mailboxes")).to_contain_text("Renamed meanwhile")
        expect(detail.locator("#live-health")).to_contain_text("Inbox backlog7")
        # No reload: the script's own state survived, and the rest of the page was left alone.
        for page in (dashboard, detail):
            assert page.evaluate("window.sameDocument") is True
    finally:
        context.close()
