"""The go-live finished in the browser, on the whole stack: the gate opens, or an admin overrides it.

The onboarding lead takes the client-change plan to Scenario A (the steps of
test_onboarding_journey), then NHS England issues the live certificate, the mailbox admin installs
it, the lead completes the remaining required tasks, and once the live mailbox has a successful
handshake the readiness gate opens. Separately, a mailbox admin overrides the closed gate of a second
live mailbox with a written reason, and the auditor finds the override and its reason in the trail.

These tests run on a stack of their own: a live plan is one per organisation, so they cannot share
Demo Org with test_onboarding_journey. No live mailbox here has a password or shared key, so even
with the gate open nothing can reach NHS England (a send, poll or handshake stops before connecting).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from playwright.sync_api import expect

from .conftest import Stack, sign_in
from .test_onboarding_journey import (
    LIVE_CN,
    PDF,
    admin_generates_csrs,
    ask_nhs_england,
    link_the_production_csr,
    list_the_production_ips,
    prepare_the_submission,
    record_the_decision,
    send_the_live_csr,
    set_status,
    start_the_plan,
    task_row,
)

pytestmark = pytest.mark.browser
TICKET = "CS0234567"
OVERRIDE_REASON = (
    "Pathology results for the new renal unit must flow from Monday; the second mailbox's "
    "certificate request is with the National Service Desk under CS0345678."
)

# Run in the stack's own database: what no browser can do. The workers' daily handshake runs once
# when they start and covers X26LIVE1 (made before they start); it fails, as the mailbox has no
# credentials. Wait for it, so that it cannot land after the result seeded below.
WAIT_FOR_THE_STARTUP_HANDSHAKE = """
import time
from portal.mailboxes.models import Mailbox
deadline = time.monotonic() + 180
while Mailbox.objects.get(mailbox_id="X26LIVE1").last_handshake_at is None:
    assert time.monotonic() < deadline, "the workers never ran the daily handshake"
    time.sleep(0.5)
"""
# There is no live MESH here (nor any way to reach NHS England's): a successful live handshake
# cannot happen, so its result is written on the live mailbox as a handshake would write it.
SEED_A_SUCCESSFUL_LIVE_HANDSHAKE = """
from django.utils import timezone
from portal.mailboxes.models import Mailbox
updated = Mailbox.objects.filter(mailbox_id="X26LIVE1").update(
    last_handshake_at=timezone.now(), last_handshake_ok=True, last_handshake_ms=184
)
assert updated == 1
"""


@pytest.fixture(scope="module")
def go_live_stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("neomesh-go-live"))
    # The live and integration mailboxes (no credentials) exist before the workers start.
    running.manage("migrate", "--noinput")
    running.manage("seed_demo")
    running.manage("seed_onboarding_demo")
    running.start()
    yield running
    running.stop()


def open_task(page, plan_url: str, title: str):
    """From the plan's phase tables (a waiting or overdue task is also listed above them)."""
    page.goto(plan_url)
    page.locator("section.phase").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)


def sign_in_as(browser, stack, username: str):
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    sign_in(page, stack, username)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    return page


def sign_for_the_csr(csr_pem: bytes, *, other_key: bool = False) -> bytes:
    """What the National Service Desk sends back: a certificate for the CSR, from a throwaway CA.

    With the chain after it, as the desk sends it. `other_key` signs another key (a mix-up).
    """
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NeoMesh Test Authentication CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    public_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        if other_key
        else csr.public_key()
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return b"".join(item.public_bytes(serialization.Encoding.PEM) for item in (leaf, ca))


def nhs_england_replies_with_the_ticket(page, plan_url: str):
    open_task(page, plan_url, "Send the CSR and the conformance certificate")
    page.get_by_role("link", name=f"MESH API certificate request (live): {LIVE_CN}").click()
    page.get_by_label("The reply", exact=True).fill(
        f"Your live certificate for {LIVE_CN} is attached, issued under the NHS Authentication G2 "
        "chain. Install it before its first use."
    )
    page.get_by_label("Ticket reference", exact=True).fill(TICKET)
    page.get_by_role("button", name="Record the reply").click()
    expect(page.locator(".flash")).to_contain_text("Reply recorded.")
    open_task(page, plan_url, "Send the CSR and the conformance certificate")
    set_status(page, "Done")


def admin_installs_the_live_certificate(browser, stack):
    admin = sign_in_as(browser, stack, "mailbox-admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Mailboxes").click()
    admin.get_by_role("link", name="X26LIVE1", exact=True).click()
    admin.get_by_role("link", name=LIVE_CN).click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("Certificate for X26LIVE1")
    # The ticket recorded with NHS England's reply is kept on the CSR.
    expect(admin.locator(".facts")).to_contain_text(TICKET)
    with admin.expect_download() as info:
        admin.get_by_role("link", name="Download CSR").click()
    csr_pem = Path(info.value.path()).read_bytes()

    # A certificate for another key (someone else's request) is refused.
    admin.get_by_label("Or paste the certificate").fill(
        sign_for_the_csr(csr_pem, other_key=True).decode()
    )
    admin.get_by_role("button", name="Install certificate").click()
    expect(admin.locator(".error-summary")).to_contain_text(
        "The certificate does not match this CSR's private key."
    )

    admin.get_by_label("Or paste the certificate").fill("")
    admin.get_by_label("Certificate file (PEM)").set_input_files(
        files=[
            {
                "name": f"{LIVE_CN}.pem",
                "mimeType": "application/x-pem-file",
                "buffer": sign_for_the_csr(csr_pem),
            }
        ]
    )
    admin.get_by_role("button", name="Install certificate").click()
    expect(admin.locator(".flash")).to_contain_text("Certificate installed: X26LIVE1 now uses it.")
    expect(admin.locator(".facts")).to_contain_text("Active")
    admin.context.close()


def complete_the_production_tasks(page, plan_url: str):
    open_task(page, plan_url, "Install the live certificate")
    expect(page.get_by_text("Nothing holds this task up: it can be marked done.")).to_be_visible()
    set_status(page, "Done")

    open_task(page, plan_url, "Sign the connection agreement and upload it to DOS")
    page.get_by_label("Title", exact=True).fill("Connection agreement v4, signed by the CIO")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "connection-agreement.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Upload evidence").click()
    expect(page.locator(".flash")).to_contain_text("Evidence kept: connection-agreement.pdf")
    set_status(page, "Done")

    open_task(page, plan_url, "Confirm the live shared secret and endpoint")
    page.get_by_label("Notes", exact=True).fill(
        f"ITOC confirmed on {TICKET} that live uses the same shared secret as integration; the "
        "live endpoint and CA bundle are recorded on the mailbox."
    )
    set_status(page, "Done")


def the_live_mailbox_waits(page, stack, reason: str):
    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="X26LIVE1", exact=True).click()
    expect(page.locator("p.task-result")).to_contain_text(f"Sends and polls wait: {reason}")


def go_live(page, stack, plan_url: str):
    stack.manage("shell", "-c", WAIT_FOR_THE_STARTUP_HANDSHAKE)
    open_task(page, plan_url, "Go live: a successful handshake with the live mailbox")
    expect(page.locator(".blockers")).to_contain_text(
        "The last handshake with X26LIVE1 failed: fix it and try again."
    )
    # Marked done without one, it is refused with the same reason.
    page.get_by_label("Status", exact=True).select_option(label="Done")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text(
        "The last handshake with X26LIVE1 failed"
    )

    stack.manage("shell", "-c", SEED_A_SUCCESSFUL_LIVE_HANDSHAKE)
    open_task(page, plan_url, "Go live: a successful handshake with the live mailbox")
    expect(page.get_by_text("Nothing holds this task up: it can be marked done.")).to_be_visible()
    set_status(page, "Done")


def test_the_lead_and_the_mailbox_admin_take_the_live_mailbox_live(go_live_stack, browser, page):
    stack = go_live_stack
    sign_in(page, stack, "onboarding-lead")
    plan_url = start_the_plan(page, stack)
    ask_nhs_england(page, plan_url)
    record_the_decision(page, plan_url)
    list_the_production_ips(page, plan_url)
    prepare_the_submission(page, plan_url)
    admin_generates_csrs(browser, stack)
    link_the_production_csr(page, plan_url)
    send_the_live_csr(page, plan_url)

    nhs_england_replies_with_the_ticket(page, plan_url)
    admin_installs_the_live_certificate(browser, stack)
    complete_the_production_tasks(page, plan_url)

    # Only go-live holds the gate now: the certificate is no longer a reason.
    page.goto(plan_url)
    page.get_by_role("link", name="Readiness gate for X26LIVE1").click()
    expect(page.get_by_text("Closed: no live transfers")).to_be_visible()
    reasons = page.locator(".gate .reasons li")
    expect(reasons).to_have_count(1)
    expect(reasons).to_have_text(
        re.compile(r"Live mailbox X26LIVE1 is not ready: 1 required onboarding task is not done")
    )
    the_live_mailbox_waits(
        page, stack, "live mailbox X26LIVE1 is not ready: 1 required onboarding task is not done"
    )

    go_live(page, stack, plan_url)

    page.goto(plan_url)
    expect(page.locator(".gate")).to_contain_text("X26LIVE1: Open: may send and poll")
    # The early-life tasks come after go-live and do not hold the gate.
    for title in ("Controlled first send and receive", "Watch the live mailbox"):
        expect(task_row(page, title)).to_contain_text("To do")
    page.get_by_role("link", name="Readiness gate for X26LIVE1").click()
    expect(page.get_by_text("Open: may send and poll")).to_be_visible()
    expect(
        page.get_by_text("The live plan's required tasks are done and an unexpired certificate")
    ).to_be_visible()
    expect(page.locator(".gate .reasons")).to_have_count(0)

    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="X26LIVE1", exact=True).click()
    expect(page.get_by_text("Gate open")).to_be_visible()
    expect(page.get_by_text("Not transferring")).to_have_count(0)
    expect(page.get_by_text("Sends and polls wait")).to_have_count(0)


def test_an_admin_overrides_a_closed_gate_and_the_audit_trail_keeps_the_reason(
    go_live_stack, browser
):
    stack = go_live_stack
    admin = sign_in_as(browser, stack, "mailbox-admin")
    # A second live mailbox: no plan names it and it has no certificate yet.
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Mailboxes").click()
    admin.get_by_role("link", name="Add a mailbox").click()
    admin.get_by_label("Organisation", exact=True).select_option(label="Demo Org (X26)")
    admin.get_by_label("Environment", exact=True).select_option(label="Live")
    admin.get_by_label("MESH mailbox id").fill("X26LIVE2")
    admin.get_by_label("Name", exact=True).fill("Renal pathology results")
    admin.get_by_role("button", name="Add mailbox").click()
    expect(admin.locator(".flash")).to_contain_text("Mailbox X26LIVE2 added.")
    expect(admin.locator("p.task-result")).to_contain_text("Not transferring")

    admin.get_by_role("link", name="See the readiness gate").click()
    expect(admin.get_by_text("Closed: no live transfers")).to_be_visible()
    expect(
        admin.get_by_text("Live mailbox X26LIVE2 has no active certificate installed.")
    ).to_be_visible()
    admin.get_by_role("link", name="Override the gate…").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text(
        "Override the readiness gate for X26LIVE2"
    )

    # A reason too short to audit is refused.
    reason_field = admin.get_by_label("Why must this live mailbox transfer before its plan")
    reason_field.fill("Urgent.")
    admin.get_by_label("I understand that the live mailbox will send and poll").check()
    admin.get_by_role("button", name="Override the gate").click()
    expect(admin.locator(".error-summary")).to_contain_text("at least 20 characters")

    reason_field.fill(OVERRIDE_REASON)
    admin.get_by_label("I understand that the live mailbox will send and poll").check()
    admin.get_by_role("button", name="Override the gate").click()
    expect(admin.locator(".flash")).to_contain_text(
        "Readiness gate overridden: X26LIVE2 may now send and poll."
    )
    expect(admin.get_by_text("Overridden: transfers allowed")).to_be_visible()
    expect(admin.get_by_text("The gate would be closed because:")).to_be_visible()
    expect(admin.locator(".timeline")).to_contain_text(
        f"Overridden by mailbox-admin: “{OVERRIDE_REASON}”"
    )

    admin.goto(stack.url + "/mailboxes/")
    admin.get_by_role("link", name="X26LIVE2", exact=True).click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("X26LIVE2")
    expect(admin.get_by_text("Gate open")).to_be_visible()
    expect(admin.get_by_text("Not transferring")).to_have_count(0)
    admin.context.close()

    auditor = sign_in_as(browser, stack, "auditor")
    auditor.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    auditor.get_by_label("Action", exact=True).fill("onboarding.gate_overridden")
    auditor.get_by_role("button", name="Filter").click()
    rows = auditor.locator("table.audit-records tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("mailbox-admin")
    expect(rows).to_contain_text("onboarding.gate_overridden")
    expect(rows).to_contain_text(f"Reason: {OVERRIDE_REASON}")
    expect(rows).to_contain_text("readiness gate overridden for X26LIVE2")
    auditor.context.close()
