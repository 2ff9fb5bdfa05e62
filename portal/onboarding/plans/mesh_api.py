"""MESH API go-live: phases 0-8 of the onboarding playbook, for an organisation starting afresh."""

from __future__ import annotations

from .spec import (
    DOS_URL,
    INT_ENDPOINT,
    ITOC,
    LIVE_ENDPOINT,
    MAILBOX_FORM_URL,
    PlanTemplate,
    TaskSpec,
)
from .spec import NATIONAL_SERVICE_DESK as NSD


def _estimate(days: int) -> dict:
    return {
        "days": days,
        "turnaround": f"No published turnaround: {days} working days is our estimate.",
    }


def _published(days: int, text: str) -> dict:
    return {"days": days, "published": True, "turnaround": text}


def _bau(**kwargs) -> TaskSpec:
    """Business as usual: recurring, kept open, never holding up go-live."""
    return TaskSpec(phase=8, required=False, turnaround="Recurring.", **kwargs)


TASKS = (
    # Phase 0: organisation prerequisites.
    TaskSpec(
        key="ods-code",
        ref="0.1",
        phase=0,
        title="Confirm the ODS code",
        guidance="Confirm the ODS code of the organisation that will own the mailbox, and the "
        "supplier's ODS code if a supplier manages the mailbox. Apply to the ODS team if there is "
        "none: the mailbox form is not processed without one. It is also part of the certificate CN.",
        evidence="ODS code, recorded once per organisation",
        **_estimate(1),
    ),
    TaskSpec(
        key="dos-account",
        ref="0.2",
        phase=0,
        title="Create a Digital Onboarding Service account",
        guidance=f"Create a developer account on the Digital Onboarding Service ({DOS_URL}), "
        "register the organisation and the product, and add MESH under 'APIs to be used'. DOS has "
        "four stages: setup and eligibility, non-functional requirements, technical conformance, "
        "legal agreement.",
        evidence="DOS product record and its URL",
        **_estimate(2),
    ),
    TaskSpec(
        key="nsd-registration",
        ref="0.3",
        phase=0,
        title="Register with the National Service Desk",
        guidance="Use the online service discovery form. The registration is needed later to "
        "raise incidents and service requests, including live certificates and renewals.",
        evidence="Registration confirmation",
        sent_to="National Service Desk",
        **_estimate(5),
    ),
    TaskSpec(
        key="dspt",
        ref="0.4",
        phase=0,
        title="Complete the Data Security and Protection Toolkit for this year",
        guidance="Status must be 'Standards met' or 'Standards exceeded'; profile 'NHS Business "
        "Partner' if the product processes patient data, 'Company' if it only has technical "
        "access. It must be renewed every year.",
        evidence="DSPT status and publication date",
        evidence_kind="dspt",
        review_months=12,
        **_estimate(10),
    ),
    TaskSpec(
        key="clinical-risk",
        ref="0.5",
        phase=0,
        title="Clinical risk management (DCB0129)",
        guidance="Name a Clinical Safety Officer and keep a hazard log and safety case. The "
        "exact MESH clinical-safety questions in DOS are not public (unconfirmed).",
        evidence="CSO name, clinical risk management file, hazard log",
        evidence_kind="clinical_safety",
        review_months=12,
        **_estimate(10),
    ),
    TaskSpec(
        key="read-agreement",
        ref="0.6",
        phase=0,
        title="Read the connection agreement and the acceptable use policy",
        guidance="Read the sample connection agreement and the End User Organisation acceptable "
        "use policy, and nominate a signatory: an officer with authority to bind the organisation.",
        evidence="Named signatory",
        **_estimate(2),
    ),
    TaskSpec(
        key="network-path",
        ref="0.7",
        phase=0,
        title="Decide the network path",
        guidance="The MESH API is internet-facing; the HSCN endpoints are deprecated. Open TCP 443 "
        "outbound to MESH only, from a UK source IP. Record the egress addresses in the IP "
        "allow-list register. No requirement to register your own source IPs for the API was "
        "found (unconfirmed).",
        evidence="Egress addresses in the IP allow-list register",
        check="allow_list",
        **_estimate(5),
    ),
    # Phase 1: eligibility and use case.
    TaskSpec(
        key="use-case",
        ref="1.1",
        phase=1,
        depends_on=("dos-account",),
        title="Submit 'Setup and eligibility' with the MESH use case",
        guidance="Choose one or more use cases WL1-WL17, add a narrative and ideally a context "
        "diagram of the organisations and data flows; this also shows the legal basis. You may "
        "start building before approval, at your own risk.",
        evidence="Submitted use-case section and context diagram",
        sent_to="DOS (MESH team)",
        **_published(10, "Response in 5 to 10 working days."),
    ),
    TaskSpec(
        key="supplier-pack",
        ref="1.2",
        phase=1,
        depends_on=("use-case",),
        title="Receive the supplier pack",
        guidance="The assurance team emails the technical testing requirements. Keep the "
        "thread: you reply to it to book the witnessed test.",
        evidence="Supplier-pack email",
        evidence_kind="supplier_pack",
        sent_to="From the NHS England assurance team",
        **_published(10, "Within 10 working days of use-case approval."),
    ),
    # Phase 2: Path to Live (integration) access.
    TaskSpec(
        key="workflows",
        ref="2.1",
        phase=2,
        title="Identify the workflow groups and ids",
        guidance="List the initiator ids and, for two-way flows, the responder ids (usually the "
        "same id with _ACK). Check them against NHS England's workflow list. If a workflow does "
        "not exist yet, request it before the mailbox form: this section is often filled in "
        "with too little detail, which delays the mailbox.",
        evidence="Workflow list per mailbox",
        **_estimate(3),
    ),
    TaskSpec(
        key="int-mailbox",
        ref="2.2",
        phase=2,
        depends_on=("ods-code", "workflows"),
        title="Request the integration mailbox",
        guidance=f"Use the mailbox form ({MAILBOX_FORM_URL}) with environment 'Path to live - "
        f"integration', or email {ITOC} with name, email, phone, organisation name and ODS code. "
        "A mailbox admin adds the mailbox to NeoMesh once its id arrives; keep the password in "
        "NeoMesh's encrypted field, never in notes.",
        evidence="Form reference; mailbox id",
        sent_to="ITOC / MESH team",
        correspondence="int_mailbox_request",
        **_published(5, "Mailbox id and password within 5 working days."),
    ),
    TaskSpec(
        key="int-shared-secret",
        ref="2.3",
        phase=2,
        depends_on=("int-mailbox",),
        title="Obtain the environment shared secret",
        guidance=f"ITOC ({ITOC}) issues it with the mailbox, or on request. A mailbox admin sets "
        "it on the mailbox; record its source and date, never its value. Never rely on a client "
        "library's built-in default key.",
        evidence="Source and date of the secret",
        sent_to="ITOC",
        **_estimate(2),
    ),
    TaskSpec(
        key="int-csr",
        ref="2.4",
        phase=2,
        depends_on=("int-mailbox",),
        title="Generate the integration key and CSR and send the CSR to ITOC",
        guidance=f"A mailbox admin generates the key and CSR under Certificates (CN "
        "{integration mailbox id}.{ODS code}.api.mesh-client.nhs.uk, nothing else in the "
        f"subject). Email the CSR to {ITOC} with the application name, mailbox id, environment "
        "and CN.",
        evidence="The CSR made in NeoMesh and the request email",
        check="integration_csr",
        sent_to="ITOC",
        correspondence="int_csr_request",
        **_published(5, "Integration certificate within 5 working days."),
    ),
    TaskSpec(
        key="int-trust",
        ref="2.5",
        phase=2,
        depends_on=("int-csr",),
        title="Install the integration certificate and trust chain",
        guidance=f"Install the issued certificate, and the CA bundle on the mailbox: NHS PTL Root "
        f"Authority G2, then NHS INT Authentication G2 (root first). Endpoint: {INT_ENDPOINT}.",
        evidence="CA bundle version and date",
        **_estimate(1),
    ),
    TaskSpec(
        key="sandbox",
        ref="2.6",
        phase=2,
        required=False,
        title="Develop against mesh-sandbox (optional, early)",
        guidance="The sandbox needs no client certificate. It never expires messages or raises "
        "non-delivery reports by itself: inject them through its admin API.",
    ),
    # Phase 3: build and self-test in integration.
    TaskSpec(
        key="behaviours",
        ref="3.1",
        phase=3,
        depends_on=("int-trust",),
        title="Implement the mandatory behaviours",
        guidance="A fresh authentication token per request (unique nonce, UTC time within 2 "
        "hours, upper-case mailbox id); a daily handshake with the client version and OS "
        "headers; the inbox cycle (download, all chunks, acknowledge; keep polling while a page "
        "holds 500); REPORT messages; chunked send and receive; tracking used sparingly. Log "
        "the message id of every send; never put patient data in the local id.",
        evidence="Design notes; logged message ids",
        **_estimate(20),
    ),
    TaskSpec(
        key="rehearse",
        ref="3.2",
        phase=3,
        depends_on=("behaviours",),
        title="Rehearse the witnessed test cases",
        guidance="The official list is in the supplier pack. Start the undelivered-message case "
        "early: it needs a message left uncollected for 5 days.",
        evidence="Test run logs, message ids, screenshots",
        evidence_kind="witness_test",
        **_estimate(10),
    ),
    # Phase 4: non-functional requirements and technical conformance.
    TaskSpec(
        key="nfr",
        ref="4.1",
        phase=4,
        depends_on=("dspt", "clinical-risk"),
        title="Answer the non-functional requirement questions in DOS",
        guidance="Data security, clinical risk and use of the production environment.",
        evidence="Completed DOS sections",
        sent_to="DOS",
        **_estimate(5),
    ),
    TaskSpec(
        key="book-witness",
        ref="4.2",
        phase=4,
        depends_on=("supplier-pack", "rehearse"),
        title="Book the witnessed test",
        guidance="Reply to the supplier-pack email. The test lasts 2 to 3 hours; NHS England may "
        "ask you to prepare test data a few days before.",
        evidence="Booking confirmation",
        sent_to="NHS England assurance team",
        **_estimate(10),
    ),
    TaskSpec(
        key="conformance",
        ref="4.3",
        phase=4,
        depends_on=("book-witness",),
        title="Pass the witnessed test and receive the Technical Conformance Certificate",
        guidance="Upload the certificate to the technical conformance stage in DOS and attach "
        "it here: the live mailbox, the live certificate and later renewals need it.",
        evidence="Technical Conformance Certificate (PDF)",
        evidence_kind="conformance_certificate",
        sent_to="Emailed by NHS England",
        **_published(5, "Within 5 working days of the witnessed test."),
    ),
    # Phase 5: legal.
    # NHS England emails the agreement within 5 working days of the witnessed test, alongside the
    # conformance certificate (playbook 5.1): it waits for the test, not for the certificate.
    TaskSpec(
        key="agreement",
        ref="5.1",
        phase=5,
        depends_on=("book-witness", "read-agreement"),
        title="Sign the connection agreement and upload it to DOS",
        guidance="MESH uses a signed agreement, not the one-click online one. Upload it to the "
        "Legal agreement section and attach the signed copy here with its version.",
        evidence="Signed agreement: signatory, date, version",
        evidence_kind="connection_agreement",
        sent_to="DOS",
        **_published(5, "NHS England sends it within 5 working days of the witnessed test."),
    ),
    # Phase 6: production credentials.
    TaskSpec(
        key="live-mailbox",
        ref="6.1",
        phase=6,
        depends_on=("conformance",),
        title="Request the live mailbox",
        guidance="Same form, environment Live. Mailbox ids differ per environment, and the live "
        "workflows must be listed again. NHS England will ask to see the conformance "
        "certificate. A mailbox admin adds the live mailbox to NeoMesh; name it on this plan.",
        evidence="Live mailbox id recorded in NeoMesh",
        check="target_mailbox",
        sent_to="MESH team (mailbox form)",
        correspondence="live_mailbox_request",
        **_published(5, "Mailbox id and password within 5 working days."),
    ),
    TaskSpec(
        key="live-csr",
        ref="6.2",
        phase=6,
        depends_on=("live-mailbox",),
        title="Generate the live key and CSR and send it with the conformance certificate",
        guidance=f"The CN uses the live mailbox id (not the integration one) and the ODS code. "
        f"Email the CSR and the conformance certificate to {NSD} (the National Service Desk, "
        "not ITOC) and record the CS ticket reference.",
        evidence="The CSR made in NeoMesh; the request and its ticket",
        check="target_csr",
        sent_to="National Service Desk",
        correspondence="live_csr_request",
        **_published(5, "Live certificate within 5 working days."),
    ),
    TaskSpec(
        key="live-certificate",
        ref="6.2b",
        phase=6,
        depends_on=("live-csr",),
        title="Install the live certificate",
        guidance="Chain: NHS Root Authority G2, then NHS Authentication G2.",
        evidence="The active live certificate in NeoMesh",
        check="target_certificate",
        **_estimate(1),
    ),
    TaskSpec(
        key="live-secret",
        ref="6.3",
        phase=6,
        depends_on=("live-mailbox",),
        title="Confirm the live shared secret and configure the live endpoint",
        guidance=f"Endpoint {LIVE_ENDPOINT}. Record the secret's source and date, never its value.",
        evidence="Configuration change record",
        **_estimate(2),
    ),
    # Phase 7: go live and early life.
    TaskSpec(
        key="live-handshake",
        ref="7.1",
        phase=7,
        depends_on=("live-certificate", "live-secret", "agreement", "network-path", "nfr"),
        title="First live handshake",
        guidance="A mailbox admin runs a handshake from the live mailbox's page. Done once the "
        "last live handshake succeeded within 24 hours; the readiness gate then opens.",
        evidence="The live handshake recorded in NeoMesh",
        check="handshake",
        **_estimate(1),
    ),
    TaskSpec(
        key="first-exchange",
        ref="7.1b",
        phase=7,
        depends_on=("live-handshake",),
        required=False,
        title="Controlled first send and receive with the partner",
        guidance="Confirm the recipient mailbox by endpoint lookup or the agreed id, and that "
        "the recipient is registered for the workflow (otherwise errors 16 or 17).",
        evidence="Live smoke-test log with message ids",
        **_estimate(2),
    ),
    TaskSpec(
        key="monitoring",
        ref="7.2",
        phase=7,
        depends_on=("live-handshake",),
        required=False,
        title="Turn on monitoring",
        guidance="Daily handshake, time since the last poll, inbox depth and age (5 days, then "
        "a non-delivery report), REPORT messages, certificate expiry.",
        evidence="Monitoring dashboard link",
        **_estimate(5),
    ),
    # Phase 8: business as usual.
    _bau(
        key="renew-certificates",
        ref="8.1",
        title="Renew certificates before they expire",
        guidance="Keep the same CN and send a new CSR: integration to ITOC, live to the National "
        "Service Desk with the conformance certificate. Lifetime is reportedly 3 years (unconfirmed).",
        evidence="New certificate and expiry date",
    ),
    _bau(
        key="dspt-annual",
        ref="8.2",
        title="Resubmit the DSPT every year",
        guidance="Attach the new DSPT publication with a review date a year on.",
        evidence="New DSPT publication date",
        evidence_kind="dspt",
        review_months=12,
    ),
    _bau(
        key="workflow-changes",
        ref="8.3",
        title="Request workflow changes per environment",
        guidance="New ids or partners: a workflow amendment through the mailbox administrator, "
        "for each environment.",
        evidence="Request reference",
    ),
    _bau(
        key="contacts",
        ref="8.4",
        title="Keep the mailbox administrator and contacts up to date",
        guidance="Only the mailbox administrator can request workflow amendments.",
        evidence="Contact record",
    ),
    _bau(
        key="software-changes",
        ref="8.5",
        title="Ask before a material client change",
        guidance="A language rewrite, library swap, new workflows or a chunking change: ask the "
        "assurance team (or the National Service Desk) first and record the answer. Java MESH "
        "client users must install each release within 6 months.",
        evidence="Change-impact note and NHS England's reply",
    ),
    _bau(
        key="agreement-versions",
        ref="8.6",
        title="Accept new connection agreement versions",
        guidance="NHS England may ask you to accept a new version in DOS.",
        evidence="Accepted version and date",
        evidence_kind="connection_agreement",
    ),
)

MESH_API_GO_LIVE = PlanTemplate(
    key="mesh-api",
    version=2,
    name="MESH API go-live",
    summary=(
        "The whole path from organisation prerequisites to live use and business as usual: phases "
        "0 to 8 of the onboarding playbook. The end-to-end process takes a month or more."
    ),
    phases=(
        (0, "Organisation prerequisites"),
        (1, "Eligibility and use case"),
        (2, "Path to Live (integration) access"),
        (3, "Build and self-test in integration"),
        (4, "Non-functional requirements and technical conformance"),
        (5, "Legal"),
        (6, "Production credentials"),
        (7, "Go live and early life"),
        (8, "Business as usual"),
    ),
    tasks=TASKS,
    changes=(
        "Version 1: first published.",
        "Version 2: 5.1 (connection agreement) waits for 4.2 (the witnessed test), not for the "
        "conformance certificate: NHS England sends both within 5 working days of the test.",
    ),
)
