"""A newcomer's first journey, as `make run` starts NeoMesh: send a file, poll, see it arrive."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser


def test_a_mailbox_admin_sends_a_file_and_sees_it_arrive(stack, page, tmp_path):
    sign_in(page, stack, "mailbox-admin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    upload = tmp_path / "discharge-summary.csv"
    upload.write_text("nhs_number,event\n9999999999,discharged\n")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Send a file").first.click()
    page.get_by_label("From mailbox").select_option("X26ABC1")
    page.get_by_label("To (recipient mailbox id)").fill("X26ABC2")
    page.get_by_label("Workflow").select_option("TEST_WORKFLOW")
    page.get_by_label("Subject").fill("Journey test")
    page.get_by_label("File to send").set_input_files(str(upload))
    page.get_by_role("button", name="Queue for sending").click()

    # The message page refreshes itself while the worker sends it.
    expect(page.get_by_role("heading", name=re.compile("Outbound message"))).to_be_visible()
    expect(page.get_by_text("Accepted by MESH").first).to_be_visible(timeout=30_000)

    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="X26ABC2").first.click()
    page.get_by_role("button", name="Poll now").click()
    # The stack's workers poll each mailbox on their own schedule too (every 5 minutes): when theirs
    # came between the acceptance and the click, this poll finds the inbox already empty. Either
    # way the message must be in the inbound list below, stored once.
    expect(
        page.get_by_text(
            re.compile(
                r"Polled X26ABC2: (1 in the inbox, 1 downloaded, 1 acknowledged"
                r"|0 in the inbox, 0 downloaded, 0 acknowledged)"
            )
        )
    ).to_be_visible(timeout=30_000)

    page.goto(stack.url + "/messages/?direction=in")
    row = page.get_by_role("row").filter(has_text="discharge-summary.csv")
    expect(row).to_have_count(1)
    row.get_by_role("link").first.click()
    expect(page.get_by_text("Journey test").first).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download payload").click()
    download = download_info.value
    assert download.suggested_filename == "discharge-summary.csv"
    assert open(download.path(), encoding="utf-8").read() == upload.read_text()
