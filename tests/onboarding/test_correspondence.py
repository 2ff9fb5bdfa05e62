"""Emails to NHS England written from the plan's data, downloaded as .eml with attachments."""

from __future__ import annotations

import email
import email.policy
from datetime import date, timedelta

import pytest
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.certificates.services import certificate_create_csr
from portal.onboarding import correspondence as letters
from portal.onboarding import services
from portal.onboarding.errors import OnboardingError
from portal.onboarding.models import Correspondence, CorrespondenceKind, TaskStatus
from tests.factories import make_user

from .helpers import PDF, add_evidence, close, make_plan, task

pytestmark = pytest.mark.django_db
Kind = CorrespondenceKind


@pytest.fixture
def plan():
    return make_plan()


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_the_nsd_query_is_written_from_the_plan(plan):
    services.allowlist_add(
        organisation=plan.organisation,
        environment="live",
        address="81.2.69.8",
        purpose="production NAT",
    )
    user = make_user(username="olu", first_name="Olu", last_name="Lead", email="olu@example.org")
    letter = letters.correspondence_draft(
        plan=plan, kind=Kind.NSD_CHANGE_QUERY, actor=Actor.person(user=user)
    )
    assert letter.task.key == "nsd-query"
    assert letter.to_addresses == "ssd.nationalservicedesk@nhs.net"
    assert letter.cc_addresses == "itoc.supportdesk@nhs.net"
    assert "(Demo Org, X26)" in letter.subject and "TypeScript to Python" in letter.subject
    body = letter.body
    assert "Demo Org (ODS code X26)" in body
    assert "X26LIVE1.X26.api.mesh-client.nhs.uk" in body
    assert "81.2.69.8 (production NAT)" in body
    assert "Our integration mailbox is X26INT01." in body
    assert "Olu Lead" in body and "&#x27;" not in body
    assert (letter.turnaround_days, letter.turnaround_published) == (10, False)


def test_it_downloads_as_an_eml_that_parses_back(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    message = parse(letters.correspondence_eml(letter, sender="Olu Lead <olu@example.org>"))
    assert message["To"] == "ssd.nationalservicedesk@nhs.net"
    assert message["Cc"] == "itoc.supportdesk@nhs.net"
    assert message["From"] == "Olu Lead <olu@example.org>"
    assert message["Subject"] == letter.subject
    assert message["X-Unsent"] == "1"
    assert "Demo Org (ODS code X26)" in message.get_body(("plain",)).get_content()
    assert list(message.iter_attachments()) == []


def test_the_live_csr_request_carries_the_csr_and_the_conformance_certificate(plan):
    certificate = certificate_create_csr(mailbox=plan.target_mailbox)
    services.task_link_certificate(task=task(plan, "production-csr"), certificate=certificate)
    add_evidence(
        plan, task(plan, "review-submission"), name="Technical Conformance Certificate.pdf"
    )
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    assert letter.task.key == "send-live-csr"
    assert letter.to_addresses == "ssd.nationalservicedesk@nhs.net" and not letter.cc_addresses
    assert (
        letter.subject == "MESH API certificate request (live): X26LIVE1.X26.api.mesh-client.nhs.uk"
    )
    assert letters.missing_attachments(letter) == []
    data = letters.correspondence_eml(letter)
    message = parse(data)
    assert message["Subject"] == letter.subject
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {
        "X26LIVE1.X26.api.mesh-client.nhs.uk.csr",
        "Technical Conformance Certificate.pdf",
    }
    assert attachments["Technical Conformance Certificate.pdf"].get_content() == PDF
    assert (
        attachments["Technical Conformance Certificate.pdf"].get_content_type() == "application/pdf"
    )
    csr = attachments["X26LIVE1.X26.api.mesh-client.nhs.uk.csr"].get_content()
    assert csr.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert b"PRIVATE KEY" not in data and certificate.private_key.encode() not in data


def test_a_live_csr_request_without_the_conformance_certificate_is_not_sent(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    assert letters.missing_attachments(letter) == [
        "the CSR for the live mailbox",
        "the Technical Conformance Certificate",
    ]
    with pytest.raises(
        OnboardingError, match="must carry the CSR for the live mailbox and the Technical"
    ):
        letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    # Once attached, writing the draft again picks them up.
    services.task_link_certificate(
        task=task(plan, "production-csr"),
        certificate=certificate_create_csr(mailbox=plan.target_mailbox),
    )
    add_evidence(plan)
    letters.correspondence_regenerate(correspondence=letter)
    assert letters.missing_attachments(letter) == []


def test_the_integration_csr_request_goes_to_itoc(plan):
    certificate = certificate_create_csr(mailbox=plan.integration_mailbox)
    letter = letters.correspondence_draft(plan=plan, kind=Kind.INT_CSR_REQUEST)
    assert letter.to_addresses == "itoc.supportdesk@nhs.net"
    assert letter.certificate == certificate
    assert "Mailbox id: X26INT01" in letter.body and "Path to Live - integration" in letter.body
    assert "CN: X26INT01.X26.api.mesh-client.nhs.uk" in letter.body


def test_the_mailbox_request_details_list_the_form_fields(plan):
    add_evidence(plan)
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_MAILBOX_REQUEST)
    assert letter.to_addresses == ""
    assert "Environment: Live" in letter.body and "Owner ODS code: X26" in letter.body
    assert "Mailbox type: API" in letter.body and "TEST_WORKFLOW (send)" in letter.body
    assert letter.attachments.count() == 1
    intake = letters.correspondence_draft(plan=plan, kind=Kind.INT_MAILBOX_REQUEST)
    assert intake.to_addresses == "itoc.supportdesk@nhs.net"


def test_marking_sent_waits_on_nhs_england_and_counts_working_days(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    sent_on = timezone.localdate() - timedelta(days=14)
    letters.correspondence_mark_sent(correspondence=letter, sent_on=sent_on, ticket_reference="CS1")
    query = task(plan, "nsd-query")
    assert query.status == TaskStatus.WAITING_NHS and query.waiting_since == sent_on
    letter.refresh_from_db()
    assert letter.status == Correspondence.Status.SENT and letter.ticket_reference == "CS1"
    assert letter.working_days_waited() >= 9
    assert letter.is_past_turnaround(timezone.localdate() + timedelta(days=30))
    with pytest.raises(OnboardingError, match="already marked as sent"):
        letters.correspondence_mark_sent(correspondence=letter, sent_on=sent_on)
    assert AuditRecord.objects.filter(action="onboarding.correspondence_sent").exists()


def test_it_records_the_reply_and_ticket(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    with pytest.raises(OnboardingError, match="Mark the email as sent"):
        letters.correspondence_record_reply(
            correspondence=letter, reply_text="x", replied_on=timezone.localdate()
        )
    letters.correspondence_mark_sent(correspondence=letter, sent_on=date(2026, 11, 2))
    letters.correspondence_record_reply(
        correspondence=letter,
        reply_text="Valid.",
        replied_on=date(2026, 11, 6),
        ticket_reference="CS0123456",
    )
    letter.refresh_from_db()
    assert letter.status == Correspondence.Status.REPLIED and letter.ticket_reference == "CS0123456"
    assert letter.working_days_waited() == 4 and not letter.is_past_turnaround()
    assert task(plan, "nsd-query").status == TaskStatus.IN_PROGRESS


def test_the_decision_answers_its_email_once_and_nothing_waits_for_a_reply(client, plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    lead = make_user("Onboarding lead", username="lead")
    client.force_login(lead)
    url = f"/onboarding/{plan.pk}/emails/{letter.pk}/"
    page = client.get(url).content.decode()
    # Sent and waiting: the reply goes with the answer, on the decision, not a second time here.
    decision = plan.decisions.get()
    assert f'href="/onboarding/{plan.pk}/decisions/{decision.pk}/"' in page
    assert "Record the reply</button>" not in page
    services.decision_record(
        decision=decision,
        option_key="valid",
        reply_text="It remains valid.",
        ticket_reference="CS0999",
        actor=Actor.person(user=lead),
    )
    letter.refresh_from_db()
    assert (letter.status, letter.reply_text, letter.ticket_reference) == (
        Correspondence.Status.REPLIED,
        "It remains valid.",
        "CS0999",
    )
    assert task(plan, "nsd-query").status == TaskStatus.DONE
    page = client.get(url).content.decode()
    assert "waiting for a reply" not in page and "Replied after" in page
    assert AuditRecord.objects.filter(action="onboarding.correspondence_replied").count() == 1


def test_it_never_puts_a_key_or_a_mailbox_secret_in_an_email(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    letter.body += "\n-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    with pytest.raises(OnboardingError, match="contains a private key"):
        letters.correspondence_eml(letter)
    mailbox = plan.target_mailbox
    mailbox.password = "live-Pa55word-9f2k"
    mailbox.save()
    letter.body = "Our password is live-Pa55word-9f2k"
    # One refusal that names nothing: no mailbox, no "password" versus "shared key".
    with pytest.raises(OnboardingError, match="it may contain a secret") as refused:
        letters.correspondence_eml(letter)
    assert "X26LIVE1" not in str(refused.value)


def test_the_nsd_query_attaches_the_conformance_certificate_when_there_is_one(plan):
    add_evidence(plan, name="tcc.pdf")
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    assert "holds a Technical Conformance Certificate for it (attached)." in letter.body
    message = parse(letters.correspondence_eml(letter))
    assert [part.get_filename() for part in message.iter_attachments()] == ["tcc.pdf"]


def _live_csr_ready(plan):
    certificate = certificate_create_csr(mailbox=plan.target_mailbox)
    services.task_link_certificate(task=task(plan, "production-csr"), certificate=certificate)
    return certificate


def test_in_scenario_b_the_old_conformance_certificate_is_never_attached(plan):
    _live_csr_ready(plan)
    old = add_evidence(plan, task(plan, "review-submission"), name="tcc-typescript.pdf")
    early = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    assert list(early.attachments.all()) == [old]
    decision = plan.decisions.get()
    services.decision_record(
        decision=decision, option_key="invalidated", reply_text="A new witnessed test is needed."
    )
    old.refresh_from_db()
    assert old.is_withdrawn() and old.withdrawn_by_decision == decision
    assert "withdrawn as invalidated: tcc-typescript.pdf" in (
        AuditRecord.objects.get(action="onboarding.decision_recorded").detail
    )
    assert letters.conformance_certificate(plan) is None
    # A draft written before the answer still holds the old one: it is neither sent nor downloaded.
    with pytest.raises(OnboardingError, match="tcc-typescript.pdf was withdrawn"):
        letters.correspondence_mark_sent(correspondence=early, sent_on=timezone.localdate())
    with pytest.raises(OnboardingError, match="was withdrawn"):
        letters.correspondence_eml(early)
    letters.correspondence_regenerate(correspondence=early)
    assert not early.attachments.exists()
    assert letters.missing_attachments(early) == ["the Technical Conformance Certificate"]
    with pytest.raises(OnboardingError, match="must carry the Technical Conformance Certificate"):
        letters.correspondence_mark_sent(correspondence=early, sent_on=timezone.localdate())
    # The new certificate, from the new witnessed test, is the one attached.
    new = add_evidence(plan, task(plan, "new-conformance-certificate"), name="tcc-python.pdf")
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    assert list(letter.attachments.all()) == [new]
    letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    # The same answer recorded again keeps the new one; a changed answer restores the old one.
    services.decision_record(decision=decision, option_key="invalidated", reply_text="Corrected.")
    new.refresh_from_db()
    assert not new.is_withdrawn()
    services.decision_record(decision=decision, option_key="valid", reply_text="Valid after all.")
    old.refresh_from_db()
    assert not old.is_withdrawn()
    assert "restored: tcc-typescript.pdf" in (
        AuditRecord.objects.filter(action="onboarding.decision_recorded").order_by("-seq")[0].detail
    )


def test_the_wait_is_the_tasks_turnaround(plan):
    query = task(plan, "nsd-query")
    query.turnaround_days, query.turnaround_published = 7, True
    query.save()
    letter = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY)
    assert (letter.turnaround_days, letter.turnaround_published) == (7, True)
    send = task(plan, "send-live-csr")
    send.turnaround_days, send.turnaround_published = 8, False
    send.save()
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    assert (letter.turnaround_days, letter.turnaround_published) == (8, False)
    # A letter without a task keeps the letter's own figure.
    intake = letters.correspondence_draft(plan=plan, kind=Kind.INT_MAILBOX_REQUEST)
    assert intake.task is None and (intake.turnaround_days, intake.turnaround_published) == (
        5,
        True,
    )


def test_the_ticket_is_recorded_against_the_certificate(plan):
    certificate = _live_csr_ready(plan)
    add_evidence(plan)
    letter = letters.correspondence_draft(plan=plan, kind=Kind.LIVE_CSR_REQUEST)
    letters.correspondence_mark_sent(
        correspondence=letter, sent_on=date(2026, 11, 2), ticket_reference=" CS0000001 "
    )
    certificate.refresh_from_db()
    assert certificate.service_desk_ticket == "CS0000001"
    letters.correspondence_record_reply(
        correspondence=letter,
        reply_text="Issued.",
        replied_on=date(2026, 11, 4),
        ticket_reference="CS0000002",
    )
    certificate.refresh_from_db()
    assert certificate.service_desk_ticket == "CS0000002"
    audit = AuditRecord.objects.get(action="onboarding.correspondence_replied")
    assert "ticket CS0000002 recorded on the certificate X26LIVE1.X26.api.mesh-client.nhs.uk" in (
        audit.detail
    )


def test_the_integration_csr_request_is_never_sent_without_its_csr(plan):
    letter = letters.correspondence_draft(plan=plan, kind=Kind.INT_CSR_REQUEST)
    assert letter.certificate is None
    with pytest.raises(
        OnboardingError, match="must carry the CSR for the integration mailbox: attach it"
    ):
        letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    certificate = certificate_create_csr(mailbox=plan.integration_mailbox)
    letters.correspondence_regenerate(correspondence=letter)
    assert letter.certificate == certificate
    letters.correspondence_mark_sent(
        correspondence=letter, sent_on=timezone.localdate(), ticket_reference="ITOC-42"
    )
    certificate.refresh_from_db()
    assert certificate.service_desk_ticket == "ITOC-42"


def test_the_nsd_query_claims_nothing_before_the_code_is_assessed(plan):
    body = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY).body
    assert "stays the same" not in body
    assert "We are assessing the Python client against the behaviour NHS England witnessed" in body
    assess = task(plan, "assess-code")
    close(task(plan, "review-submission"))
    assess.notes = "Chunking and error handling match the witnessed behaviour; retries are new."
    assess.save()
    services.task_set_status(task=assess, status=TaskStatus.DONE)
    body = letters.correspondence_draft(plan=plan, kind=Kind.NSD_CHANGE_QUERY).body
    assert "We have assessed the Python client against the behaviour NHS England witnessed" in body
    assert "What we found:\n\nChunking and error handling match the witnessed behaviour" in body
