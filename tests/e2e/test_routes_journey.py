"""A mailbox admin defines a destination and a route in the portal, sends files with the bulk send
page, and sees the received message delivered onwards on its page (the file in the folder)."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser

DISPATCH = "from portal.events.services import events_dispatch; events_dispatch()"


def test_a_route_delivers_a_received_file_to_a_folder_and_the_message_page_says_so(
    stack, page, tmp_path
):
    drop = tmp_path / "lake"
    drop.mkdir()
    sign_in(page, stack, "mailbox-admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()

    page.get_by_role("link", name="Add a destination").first.click()
    page.get_by_label("Name").fill("Data lake drop")
    page.get_by_label("Kind").select_option("directory")
    settings = {"path": str(drop), "template": "{workflow}/{filename}"}
    page.get_by_label("Settings").fill(json.dumps(settings))
    page.get_by_role("button", name="Add destination").click()
    expect(page.get_by_text("Saved Data lake drop.")).to_be_visible()
    page.get_by_role("button", name=re.compile("Test this destination")).click()
    expect(page.get_by_text(re.compile(r"Data lake drop: Wrote and removed"))).to_be_visible()

    page.get_by_role("link", name="Add a route").first.click()
    page.get_by_label("Name").fill("Results to the lake")
    mailbox = page.locator("#id_mailbox option", has_text="X26ABC2").get_attribute("value")
    page.get_by_label("Mailbox").select_option(mailbox)
    page.get_by_label("Workflow pattern").fill("TEST_*")
    page.get_by_label("Destination 1").select_option(label="Data lake drop (Directory)")
    page.get_by_role("button", name="Add route").click()
    expect(page.get_by_role("row").filter(has_text="Results to the lake")).to_contain_text(
        "Data lake drop"
    )
    # The minute's dispatch, now, as on a live system (the integrations consumer reads from the
    # first event, so a message that arrived before it ever ran is routed too).
    stack.manage("shell", "-c", DISPATCH)

    # Two files in one form, each its own message; the script shows the uploads' progress.
    first, second = tmp_path / "results-1.csv", tmp_path / "results-2.csv"
    first.write_text("nhs_number,result\n9999999999,normal\n")
    second.write_text("nhs_number,result\n9999999998,abnormal\n")
    page.goto(stack.url + "/messages/send/")
    page.get_by_role("link", name="Send many files at once").click()
    page.get_by_label("From mailbox").select_option("X26ABC1")
    page.get_by_label("To (recipient mailbox id)").fill("X26ABC2")
    page.get_by_label("Workflow").select_option("TEST_WORKFLOW")
    page.get_by_label("Files to send").set_input_files([str(first), str(second)])
    page.get_by_role("button", name="Queue every file for sending").click()
    expect(page.get_by_role("status")).to_have_text("2 of 2 queued for sending.")
    overall = page.get_by_label("Uploaded, all files")
    assert overall.evaluate("bar => bar.value === bar.max && bar.max > 0")
    sent = [link.get_attribute("href") for link in page.locator("#bulk-files a").all()]
    assert len(sent) == 2
    for url in sent:
        page.goto(stack.url + url)
        expect(page.get_by_text("Accepted by MESH").first).to_be_visible(timeout=30_000)

    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="X26ABC2").first.click()
    page.get_by_role("button", name="Poll now").click()
    # The poll (this one, or the minute's scheduled one before it) brings both files in.
    expect(page.get_by_text(re.compile(r"Polled X26ABC2: "))).to_be_visible(timeout=30_000)
    received = page.get_by_role("row").filter(has_text="results-1.csv")
    started = time.monotonic()
    page.goto(stack.url + "/messages/?direction=in")
    while not received.count():
        assert time.monotonic() - started < 60, "results-1.csv was not received within 60 s"
        page.wait_for_timeout(300)
        page.reload()
    stack.manage("shell", "-c", DISPATCH)  # the minute's scheduled dispatch, now
    received.get_by_role("link").first.click()
    deliveries = page.locator("#deliveries").locator("..")
    # The worker runs the delivery; on a busy machine the queue may take a while, and the
    # dispatch is asked again in case the first ran before the poll's event was published.
    started = time.monotonic()
    dispatched = started
    while "Delivered" not in (text := (deliveries.all_inner_texts() or [""])[0]):
        waited = time.monotonic() - started
        assert waited < 90, f"no delivery within 90 s; the message page says: {text!r}"
        if time.monotonic() - dispatched > 10:
            stack.manage("shell", "-c", DISPATCH)
            dispatched = time.monotonic()
        page.wait_for_timeout(300)
        page.reload()
    expect(deliveries).to_contain_text("Data lake drop")
    expect(deliveries).to_contain_text(str(drop / "TEST_WORKFLOW" / "results-1.csv"))
    assert (drop / "TEST_WORKFLOW" / "results-1.csv").read_text() == first.read_text()

    # Leave the shared stack as it was: the route disabled.
    page.goto(stack.url + "/integrations/")
    page.get_by_role("link", name="Results to the lake").click()
    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("row").filter(has_text="Results to the lake")).to_contain_text(
        "Disabled"
    )
