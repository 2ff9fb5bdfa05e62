"""The send form: a red LIVE banner as soon as a live mailbox is chosen, upload progress, and the
chosen file kept (with script) or named (without) after a validation error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser


def open_send_form(page, stack):
    sign_in(page, stack, "mailbox-admin")
    page.goto(stack.url + "/messages/send/")


def test_the_live_banner_shows_as_soon_as_a_live_mailbox_is_chosen(demo_stack, page):
    open_send_form(page, demo_stack)
    banner = page.get_by_role("alert").filter(has_text="This mailbox is on NHS")
    expect(banner).to_be_hidden()
    page.get_by_label("From mailbox").select_option("X26LIVE1")
    expect(banner).to_be_visible()
    assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(213, 40, 27)"
    page.get_by_label("From mailbox").select_option("X26ABC1")
    expect(banner).to_be_hidden()


def test_it_shows_upload_progress_and_keeps_the_file_after_an_error(demo_stack, page, tmp_path):
    upload = tmp_path / "discharge-batch.csv"
    upload.write_bytes(b"nhs_number,event\n" + b"9999999999,discharged\n" * 24_000)  # ~530 kB
    open_send_form(page, demo_stack)
    page.get_by_label("From mailbox").select_option("X26ABC1")
    page.get_by_label("To (recipient mailbox id)").fill("not a mailbox!")
    page.get_by_label("Workflow").select_option("TEST_WORKFLOW")
    page.get_by_label("File to send").set_input_files(str(upload))
    with page.expect_request(lambda r: r.method == "POST") as posted:
        page.get_by_role("button", name="Queue for sending").click()
    assert posted.value.headers.get("x-upload-progress") == "1"
    expect(page.locator(".error-summary")).to_be_focused()
    assert page.get_by_label("File to send").evaluate("e => e.files[0].name") == upload.name
    expect(
        page.get_by_text(re.compile(r"Your file discharge-batch\.csv \(0\.5 MB\) is still chosen"))
    ).to_be_visible()

    # Slow the upload down so that its progress can be seen on a loopback connection.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    page.get_by_label("To (recipient mailbox id)").fill("X26ABC2")
    page.get_by_role("button", name="Queue for sending").click()
    expect(page.get_by_text(re.compile(r"Uploaded [\d.]+ MB of 0\.5 MB \(\d+%\)"))).to_be_visible()
    assert 0 <= page.locator("progress#upload-progress").evaluate("e => e.value") <= 100
    expect(page.get_by_role("heading", name=re.compile("Outbound message"))).to_be_visible()
    expect(page.get_by_text("Queued for X26ABC2")).to_be_visible()


def test_without_script_the_form_posts_and_names_the_file_to_choose_again(
    demo_stack, browser, tmp_path
):
    upload = tmp_path / "results.csv"
    upload.write_bytes(b"a,b\n1,2\n")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        open_send_form(page, demo_stack)
        page.get_by_label("From mailbox").select_option("X26LIVE1")
        page.get_by_label("To (recipient mailbox id)").fill("X26ABC2")
        page.get_by_label("File to send").set_input_files(str(upload))
        page.get_by_role("button", name="Queue for sending").click()
        expect(page.get_by_text("There is a problem")).to_be_visible()
        expect(
            page.get_by_text(re.compile(r"You chose results\.csv \(8\W*bytes\)"))
        ).to_be_visible()
        expect(page.get_by_text("choose it again before sending")).to_be_visible()
        # The live mailbox is still chosen: the server shows the banner itself.
        expect(page.get_by_role("alert").filter(has_text="This mailbox is on NHS")).to_be_visible()
    finally:
        context.close()
