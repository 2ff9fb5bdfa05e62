"""An onboarding lead takes the client-change plan to Scenario A, in the browser, on the whole stack.

NHS England's answer is that the Technical Conformance Certificate stays valid: the new witnessed
test becomes not applicable, the production CSR is checked against the live mailbox id, and the live
CSR request goes to the National Service Desk with the CSR and the conformance certificate attached.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser
NSD, ITOC = "ssd.nationalservicedesk@nhs.net", "itoc.supportdesk@nhs.net"
LIVE_CN = "X26LIVE1.X26.api.mesh-client.nhs.uk"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def download_eml(page):
    with page.expect_download() as info:
        page.get_by_role("link", name="Download .eml").click()
    download = info.value
    assert download.suggested_filename.endswith(".eml")
    return email.message_from_bytes(Path(download.path()).read_bytes(), policy=email.policy.default)


def open_task(page, plan_url: str, title: str):
    page.goto(plan_url)
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)


def set_status(page, status: str):
    page.get_by_label("Status", exact=True).select_option(label=status)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_contain_text(f"saved: {status}")


def task_row(page, title: str):
    return page.get_by_role("row").filter(has_text=title)


def start_the_plan(page, stack) -> str:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Onboarding").click()
    page.get_by_role("link", name="Start a plan", exact=True).click()
    page.get_by_label("Client change and production go-live (version 2)").check()
    page.get_by_label("Organisation", exact=True).select_option(label="Demo Org (X26)")
    page.get_by_label("Target environment", exact=True).select_option("live")
    page.get_by_label("Mailbox in the target environment").select_option(label="X26LIVE1 (Live)")
    page.get_by_label("Integration mailbox").select_option(label="X26INT01 (Integration)")
    page.get_by_label("Owner of every task").select_option(label="onboarding-lead")
    page.get_by_role("button", name="Start the plan").click()
    expect(page.locator(".flash")).to_contain_text("Plan started: 16 tasks")
    expect(page.get_by_text("Closed: no live transfers")).to_be_visible()
    return page.url


def ask_nhs_england(page, plan_url: str):
    open_task(page, plan_url, "Ask NHS England whether the Python client keeps")
    page.get_by_role("button", name="Write the email").click()
    message = download_eml(page)
    assert message["To"] == NSD and message["Cc"] == ITOC
    assert "(Demo Org, X26)" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "Demo Org (ODS code X26)" in body and LIVE_CN in body and "X26INT01" in body
    page.get_by_label("Ticket reference", exact=True).fill("CS0123456")
    page.get_by_role("button", name="Mark as sent").click()
    expect(page.locator(".flash")).to_contain_text("Marked as sent")
    expect(
        page.get_by_text(re.compile(r"Waiting 0 working days of 10 \(our estimate\)"))
    ).to_be_visible()
    # The email asks the decision's question: its reply is recorded once, with the answer.
    expect(page.get_by_role("button", name="Record the reply")).to_have_count(0)
    expect(page.get_by_role("link", name="Record the answer and the reply")).to_be_visible()
    return page.url


def record_the_decision(page, plan_url: str, letter_url: str | None = None):
    page.goto(plan_url)
    expect(task_row(page, "Ask NHS England whether")).to_contain_text("Waiting on NHS England")
    page.get_by_role("link", name="Record NHS England's answer").click()
    page.get_by_label("NHS England's reply").fill(
        "The language change does not affect your Technical Conformance Certificate: it remains "
        "valid. Request the live mailbox and send the live CSR with the certificate to this desk."
    )
    page.get_by_label(re.compile("Certificate remains valid")).check()
    page.get_by_role("button", name="Record the decision").click()
    expect(page.locator(".flash")).to_contain_text(
        "Decision recorded: Certificate remains valid (Scenario A)."
    )
    for title in (
        "Arrange a new witnessed test",
        "Complete the witnessed test",
        "Receive the new Technical",
    ):
        expect(task_row(page, title)).to_contain_text("Not applicable")
    expect(task_row(page, "Ask NHS England whether")).to_contain_text("Done")
    expect(task_row(page, "Request the production (live) mailbox")).to_contain_text("To do")
    expect(page.get_by_text("Not taken")).to_be_visible()
    if letter_url is None:
        return
    # The email is answered too: nothing says it still waits for a reply.
    page.goto(letter_url)
    expect(page.locator(".facts")).to_contain_text("Replied")
    expect(page.get_by_text("waiting for a reply")).to_have_count(0)
    expect(page.get_by_text("it remains valid")).to_be_visible()


def list_the_production_ips(page, plan_url: str):
    page.goto(plan_url)
    page.get_by_role("link", name="IP allow-list").click()
    page.get_by_label("Address or CIDR range").fill("203.0.113.300")
    page.get_by_label("Purpose", exact=True).fill("Production NAT gateway")
    page.get_by_role("button", name="Add to the register").click()
    expect(page.locator(".error-summary")).to_contain_text("203.0.113.300 is not an IP address")
    page.get_by_label("Address or CIDR range").fill("81.2.69.10")
    page.get_by_role("button", name="Add to the register").click()
    expect(page.locator(".flash")).to_contain_text("81.2.69.10 added to the register.")
    open_task(page, plan_url, "List the production IP addresses")
    set_status(page, "Done")


def prepare_the_submission(page, plan_url: str):
    open_task(page, plan_url, "Review the original conformance submission")
    page.get_by_label("Title", exact=True).fill(
        "Technical Conformance Certificate (TypeScript client)"
    )
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "tcc.pdf", "mimeType": "application/pdf", "buffer": b"<html>no</html>"}]
    )
    page.get_by_role("button", name="Upload evidence").click()
    expect(page.locator(".error-summary")).to_contain_text("tcc.pdf is not what it claims to be")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "tcc.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_label("Title", exact=True).fill(
        "Technical Conformance Certificate (TypeScript client)"
    )
    page.get_by_role("button", name="Upload evidence").click()
    expect(page.locator(".flash")).to_contain_text("Evidence kept: tcc.pdf")
    set_status(page, "Done")
    open_task(page, plan_url, "Assess the Python client against the original submission")
    set_status(page, "Done")
    open_task(page, plan_url, "Request the production (live) mailbox")
    set_status(page, "Done")


def admin_generates_csrs(browser, stack):
    context = browser.new_context()
    admin = context.new_page()
    sign_in(admin, stack, "mailbox-admin")
    for mailbox_id in ("X26INT01", "X26LIVE1"):
        admin.goto(stack.url + "/certificates/")
        admin.get_by_role("link", name=f"Generate key and CSR for {mailbox_id}").click()
        admin.get_by_role("button", name="Generate key and CSR").click()
        expect(admin.locator(".flash")).to_contain_text("Key and CSR made")
    context.close()


def link_the_production_csr(page, plan_url: str):
    open_task(page, plan_url, "Generate the production key and CSR")
    page.get_by_label("CSR made in NeoMesh").select_option(
        label="X26INT01.X26.api.mesh-client.nhs.uk (CSR made, awaiting certificate)"
    )
    page.get_by_role("button", name="Link and check the CSR").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "must use the live mailbox id X26LIVE1: mailbox ids differ per environment"
    )
    page.get_by_label("CSR made in NeoMesh").select_option(
        label=f"{LIVE_CN} (CSR made, awaiting certificate)"
    )
    page.get_by_role("button", name="Link and check the CSR").click()
    expect(page.locator(".flash")).to_contain_text(f"CSR linked: {LIVE_CN}")
    set_status(page, "Done")


def send_the_live_csr(page, plan_url: str):
    open_task(page, plan_url, "Send the CSR and the conformance certificate")
    page.get_by_role("button", name="Write the email").click()
    message = download_eml(page)
    assert message["To"] == NSD and message["Cc"] is None
    assert message["Subject"] == f"MESH API certificate request (live): {LIVE_CN}"
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {f"{LIVE_CN}.csr", "tcc.pdf"}
    assert attachments["tcc.pdf"].get_content() == PDF
    assert b"PRIVATE KEY" not in message.as_bytes()
    page.get_by_role("button", name="Mark as sent").click()
    expect(page.locator(".flash")).to_contain_text("Marked as sent")
    page.goto(plan_url)
    expect(task_row(page, "Send the CSR and the conformance certificate")).to_contain_text(
        "Waiting on NHS England"
    )


def test_an_onboarding_lead_takes_the_client_change_plan_to_scenario_a(stack, browser, page):
    stack.manage("seed_onboarding_demo")  # the live and integration mailboxes, no credentials
    sign_in(page, stack, "onboarding-lead")
    plan_url = start_the_plan(page, stack)
    letter_url = ask_nhs_england(page, plan_url)
    record_the_decision(page, plan_url, letter_url)
    list_the_production_ips(page, plan_url)
    prepare_the_submission(page, plan_url)
    admin_generates_csrs(browser, stack)
    link_the_production_csr(page, plan_url)
    send_the_live_csr(page, plan_url)

    # The live mailbox still may not transfer: go-live and the certificate are outstanding.
    page.goto(plan_url)
    page.get_by_role("link", name="Readiness gate for X26LIVE1").click()
    expect(page.get_by_text("Closed: no live transfers")).to_be_visible()
    expect(
        page.get_by_text("Live mailbox X26LIVE1 has no active certificate installed.")
    ).to_be_visible()

    page.goto(plan_url)
    page.get_by_role("link", name="Status report").click()
    expect(page.get_by_role("button", name="Print this report")).to_be_visible()
    expect(page.get_by_text("Certificate remains valid (Scenario A) (recorded")).to_be_visible()
