"""Client change and production go-live: witnessed with a TypeScript client, going live in Python.

The organisation passed NHS England's witnessed test and holds a Technical Conformance Certificate
for its TypeScript MESH client, and is rewriting the client in Python before production. It asks
NHS England whether the change affects the certificate; the answer is the decision point that
chooses Scenario A (certificate remains valid) or Scenario B (a new witnessed test, then A).
"""

from __future__ import annotations

from .spec import (
    ITOC,
    LIVE_ENDPOINT,
    MAILBOX_FORM_URL,
    DecisionSpec,
    OptionSpec,
    PlanTemplate,
    TaskSpec,
)
from .spec import NATIONAL_SERVICE_DESK as NSD

FIVE_PUBLISHED = dict(days=5, published=True)


def _a(**kwargs) -> TaskSpec:
    """A Scenario A task: the production steps, taken in both scenarios (B takes them after its test)."""
    return TaskSpec(branch="A", decision="certificate", **kwargs)


def _b(**kwargs) -> TaskSpec:
    return TaskSpec(branch="B", decision="certificate", **kwargs)


TASKS = (
    TaskSpec(
        key="nsd-query",
        ref="1.1",
        phase=1,
        title="Ask NHS England whether the Python client keeps the conformance certificate valid, "
        "and confirm the production steps",
        guidance=(
            f"Email the National Service Desk ({NSD}), copying ITOC ({ITOC}). Say the witnessed test "
            "was passed with a TypeScript client that is being rewritten in Python before production. "
            "Ask whether the language change affects the Technical Conformance Certificate, and confirm "
            "the production steps: the production mailbox request, a new CSR for the production "
            "certificate, and whether the production client's static public IPs must be listed for "
            "allow-listing. NHS England publishes no rule on when a changed API client must be "
            "witnessed again, so record the answer as the decision below."
        ),
        evidence="The email sent, NHS England's reply and the ticket reference",
        sent_to="National Service Desk, copying ITOC",
        days=10,
        turnaround="No published turnaround for this question: 10 working days is our estimate.",
        correspondence="nsd_change_query",
    ),
    TaskSpec(
        key="review-submission",
        ref="1.2",
        phase=1,
        title="Review the original conformance submission",
        guidance=(
            "Gather what NHS England witnessed: the Technical Conformance Certificate (product, "
            "version and date tested), the test cases run with their logs and message ids, and the "
            "supplier-pack email thread. Attach the certificate here: the live mailbox request and "
            "the live CSR request to the National Service Desk both need it."
        ),
        evidence="Technical Conformance Certificate (PDF)",
        evidence_kind="conformance_certificate",
        days=3,
        turnaround="Internal work: 3 working days is our estimate.",
    ),
    TaskSpec(
        key="assess-code",
        ref="1.3",
        phase=1,
        depends_on=("review-submission",),
        title="Assess the Python client against the original submission",
        guidance=(
            "Check each witnessed behaviour in the Python client: error handling (MESH error codes "
            "02-17, REPORT messages, retries with a new token each attempt, responses that are 5xx), "
            "chunking (send and receive, chunk order and checksums, totals over 100 MB), the "
            "authentication token (UTC time, unique nonce, upper-case mailbox id), draining the inbox "
            "while a page holds 500 ids, and acknowledging only after the message is stored. Note "
            "every difference: it is what NHS England will ask about if a new witnessed test is needed."
        ),
        evidence="Assessment note, with test runs against mesh-sandbox and integration",
        days=5,
        turnaround="Internal work: 5 working days is our estimate.",
    ),
    TaskSpec(
        key="production-ips",
        ref="1.4",
        phase=1,
        title="List the production IP addresses",
        guidance=(
            "Record the static public addresses (or ranges) the production client connects from in "
            "the IP allow-list register. They must be UK addresses: MESH over the internet needs a UK "
            "source IP. Whether NHS England needs them for allow-listing is part of the query above. "
            "Keep the egress firewall open on TCP 443 to the MESH production servers (NHS England's "
            "own Terraform client lists 18.132.56.40, 3.11.193.200, 35.176.248.137, 3.10.194.216, "
            "35.176.231.190 and 35.179.50.16; they change, so recheck)."
        ),
        evidence="Entries in the IP allow-list register",
        check="allow_list",
        days=2,
        turnaround="Internal work: 2 working days is our estimate.",
    ),
    _b(
        key="book-witness-test",
        ref="B1",
        phase=2,
        depends_on=("assess-code",),
        title="Arrange a new witnessed test",
        guidance=(
            "Reply to the supplier-pack email thread from NHS England's assurance team to book it. "
            "NHS England may ask you to prepare test data a few days before. Rehearse the cases in "
            "integration first; the undelivered-message case needs a message left uncollected for 5 "
            "days, so start it early."
        ),
        evidence="Booking confirmation and date",
        sent_to="NHS England assurance team",
        days=10,
        turnaround="No published booking time: 10 working days is our estimate.",
    ),
    _b(
        key="witness-test",
        ref="B2",
        phase=2,
        depends_on=("book-witness-test",),
        title="Complete the witnessed test (2-3 hours)",
        guidance="The test itself lasts 2 to 3 hours. Keep the run logs and message ids.",
        evidence="Test run logs, message ids, screenshots",
        evidence_kind="witness_test",
        days=1,
        turnaround="The test lasts 2-3 hours (published); 1 working day is our estimate.",
    ),
    _b(
        key="new-conformance-certificate",
        ref="B3",
        phase=2,
        depends_on=("witness-test",),
        title="Receive the new Technical Conformance Certificate and upload it to DOS",
        guidance=(
            "NHS England emails it within 5 working days of the witnessed test. Check the product "
            "and version, upload it to the technical conformance stage in the Digital Onboarding "
            "Service, and attach it here: the live CSR request needs it."
        ),
        evidence="New Technical Conformance Certificate (PDF)",
        evidence_kind="conformance_certificate",
        sent_to="Emailed by NHS England",
        turnaround="Within 5 working days of the witnessed test.",
        **FIVE_PUBLISHED,
    ),
    _a(
        key="request-live-mailbox",
        ref="A1",
        phase=3,
        depends_on=("assess-code", "new-conformance-certificate"),
        title="Request the production (live) mailbox",
        guidance=(
            f"Use NHS England's mailbox application form ({MAILBOX_FORM_URL}) with environment Live "
            "and mailbox type API. Mailbox ids differ per environment, so list the live workflows "
            "again. NHS England will ask to see the conformance certificate. The mailbox id and "
            "password arrive within 5 working days: hand the password to a mailbox admin to store "
            "(never in notes), ask them to add the live mailbox to NeoMesh, then name it on this plan."
        ),
        evidence="Form reference; the live mailbox recorded in NeoMesh",
        check="target_mailbox",
        sent_to="MESH team (mailbox application form)",
        correspondence="live_mailbox_request",
        turnaround="Mailbox id and password within 5 working days.",
        **FIVE_PUBLISHED,
    ),
    _a(
        key="production-csr",
        ref="A2",
        phase=3,
        depends_on=("request-live-mailbox",),
        title="Generate the production key and CSR",
        guidance=(
            "A mailbox admin generates a new key and CSR for the live mailbox under Certificates. The "
            "CN is {live mailbox id}.{ODS code}.api.mesh-client.nhs.uk: the live mailbox id, not the "
            "integration one, and nothing else in the subject. Link the CSR to this task; the "
            "private key never leaves NeoMesh."
        ),
        evidence="The CSR made in NeoMesh",
        check="target_csr",
        days=1,
        turnaround="Internal work: 1 working day is our estimate.",
    ),
    _a(
        key="send-live-csr",
        ref="A3",
        phase=3,
        depends_on=("production-csr",),
        title="Send the CSR and the conformance certificate to the National Service Desk",
        guidance=(
            f"Email {NSD} (the National Service Desk, not ITOC) with the CSR and the Technical "
            "Conformance Certificate attached, and record the CS ticket reference. A request "
            "without the conformance certificate is sent back."
        ),
        evidence="The request email and the CS ticket reference",
        sent_to="National Service Desk",
        correspondence="live_csr_request",
        turnaround="Live certificate within 5 working days.",
        **FIVE_PUBLISHED,
    ),
    _a(
        key="install-live-certificate",
        ref="A4",
        phase=3,
        depends_on=("send-live-csr",),
        title="Install the live certificate",
        guidance=(
            "A mailbox admin installs the issued certificate on the CSR's page in NeoMesh. It must "
            "match the key and the CN. The live chain is NHS Root Authority G2, then NHS "
            "Authentication G2."
        ),
        evidence="The active live certificate in NeoMesh",
        check="target_certificate",
        days=1,
        turnaround="Internal work: 1 working day is our estimate.",
    ),
    _a(
        key="connection-agreement",
        ref="A5",
        phase=3,
        # In Scenario B NHS England sends the agreement after the new witnessed test; in A that
        # task is not applicable, so it holds nothing up.
        depends_on=("assess-code", "witness-test"),
        title="Sign the connection agreement and upload it to DOS",
        guidance=(
            "NHS England emails the agreement within 5 working days of the witnessed test; if you "
            "hold it from the original test, check its version is still current. An officer who can "
            "bind the organisation signs it. Upload it to the Legal agreement section of the Digital "
            "Onboarding Service and attach the signed copy here."
        ),
        evidence="Signed connection agreement: signatory, date, version",
        evidence_kind="connection_agreement",
        sent_to="Digital Onboarding Service",
        turnaround="NHS England sends it within 5 working days of the witnessed test (published). "
        "In Scenario A, with no new test, 5 working days from the assessment is our estimate.",
        **FIVE_PUBLISHED,
    ),
    _a(
        key="live-shared-secret",
        ref="A6",
        phase=3,
        depends_on=("request-live-mailbox",),
        title="Confirm the live shared secret and endpoint",
        guidance=(
            f"Confirm the live shared secret with ITOC ({ITOC}): the specification says every "
            "environment uses the same one, so check rather than assume. A mailbox admin sets it on "
            f"the live mailbox, with the live endpoint {LIVE_ENDPOINT} and the live CA bundle. Record "
            "where the secret came from and when; never its value."
        ),
        evidence="Configuration change record",
        days=2,
        turnaround="Internal work: 2 working days is our estimate.",
    ),
    _a(
        key="go-live",
        ref="A7",
        phase=4,
        depends_on=(
            "install-live-certificate",
            "connection-agreement",
            "live-shared-secret",
            "production-ips",
        ),
        title="Go live: a successful handshake with the live mailbox",
        guidance=(
            "A mailbox admin runs a handshake from the live mailbox's page. This task can be done "
            "once the last live handshake succeeded within 24 hours; the readiness gate then lets "
            "the live mailbox send and poll."
        ),
        evidence="The live handshake recorded in NeoMesh",
        check="handshake",
        days=1,
        turnaround="Internal work: 1 working day is our estimate.",
    ),
    _a(
        key="first-exchange",
        ref="A8",
        phase=5,
        depends_on=("go-live",),
        required=False,
        title="Controlled first send and receive with the partner organisation",
        guidance=(
            "Confirm the recipient's mailbox (endpoint lookup by ODS code and workflow, or the agreed "
            "id) and that it is registered for the workflow (otherwise MESH errors 16 or 17). Send one "
            "message each way and keep the message ids."
        ),
        evidence="Live smoke-test log with message ids",
        sent_to="Partner organisation",
        days=2,
        turnaround="Internal work: 2 working days is our estimate.",
    ),
    _a(
        key="monitoring",
        ref="A9",
        phase=5,
        depends_on=("go-live",),
        required=False,
        title="Watch the live mailbox",
        guidance=(
            "Check the dashboard daily at first: handshake once a day, time since the last poll, "
            "inbox depth and the oldest message against the 5-day limit (after which it goes back "
            "to the sender as a non-delivery report), REPORT messages and certificate expiry."
        ),
        evidence="Dashboard and alert set-up",
        days=5,
        turnaround="Internal work: 5 working days is our estimate.",
    ),
)

DECISIONS = (
    DecisionSpec(
        key="certificate",
        phase=1,
        answers="nsd-query",
        question="NHS England's answer on the certificate: does the Technical Conformance "
        "Certificate stay valid for the Python client?",
        guidance=(
            "Record the option that matches NHS England's reply, with the reply itself. The plan "
            "switches to that scenario: the other scenario's tasks become not applicable."
        ),
        options=(
            OptionSpec(
                key="valid",
                label="Certificate remains valid (Scenario A)",
                branches=("A",),
                summary="Go straight to the production steps; no new witnessed test.",
            ),
            OptionSpec(
                key="invalidated",
                label="Certificate invalidated (Scenario B)",
                branches=("B", "A"),
                invalidates=("conformance_certificate",),
                summary="Arrange and pass a new witnessed test, receive the new certificate, "
                "then take Scenario A's production steps. The old certificate is withdrawn: it is "
                "never attached to an email again.",
            ),
        ),
    ),
)

CLIENT_CHANGE = PlanTemplate(
    key="client-change",
    version=2,
    name="Client change and production go-live",
    summary=(
        "Witnessed and certified with one MESH client, going to production with a rewritten one: "
        "ask NHS England whether the Technical Conformance Certificate stays valid, prepare, then "
        "take Scenario A (certificate valid) or Scenario B (new witnessed test, then A)."
    ),
    phases=(
        (1, "Ask NHS England and prepare"),
        (2, "Scenario B: a new witnessed test"),
        (3, "Scenario A: production credentials"),
        (4, "Go live"),
        (5, "Early life"),
    ),
    tasks=TASKS,
    decisions=DECISIONS,
    changes=(
        "Version 1: first published.",
        "Version 2: A5 (connection agreement) also waits for B2 (the witnessed test), not applicable "
        "in Scenario A; the answer 'certificate invalidated' withdraws the old conformance "
        "certificate; estimated turnarounds say so.",
    ),
)
