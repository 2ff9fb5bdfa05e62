"""Onboarding pages: access per persona for every URL, then what each page does with good and bad input."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.certificates.models import Certificate
from portal.certificates.services import certificate_create_csr
from portal.onboarding import correspondence as letters
from portal.onboarding import services
from portal.onboarding.gate import gate_override_create
from portal.onboarding.models import AllowListEntry, Correspondence, Plan, TaskStatus
from tests.accounts.access import PERSONAS, as_persona, assert_access, assert_no_inline_code
from tests.factories import make_mailbox

from .helpers import PDF, PNG, add_evidence, make_live_mailbox, make_plan, task, upload

pytestmark = pytest.mark.django_db
VIEW = {"admin_user", "lead_user", "auditor_user", "superuser"}
LEAD = {"lead_user", "superuser"}
GATE_ADMIN = {"admin_user", "superuser"}


@pytest.fixture
def world():
    """A live plan with an email, a piece of evidence, an allow-list entry and an overridden mailbox."""
    plan = make_plan()
    spare = make_live_mailbox("X26LIVE2")
    return {
        "plan": plan,
        "task": task(plan, "nsd-query"),
        "decision": plan.decisions.get(),
        "letter": letters.correspondence_draft(plan=plan, kind="nsd_change_query"),
        "evidence": add_evidence(plan, task(plan, "review-submission")),
        "entry": services.allowlist_add(
            organisation=plan.organisation, environment="live", address="81.2.69.8", purpose="NAT"
        ),
        "override": gate_override_create(mailbox=spare, reason="A reason long enough to keep"),
    }


def _plan(w, name, *args):
    return reverse(f"onboarding:{name}", args=[w["plan"].pk, *args])


TODAY = timezone.localdate().isoformat()
CASES = [
    ("list", "get", lambda w: reverse("onboarding:list"), {}, VIEW, 200),
    ("create", "get", lambda w: reverse("onboarding:create"), {}, LEAD, 200),
    ("create_post", "post", lambda w: reverse("onboarding:create"), {}, LEAD, 400),
    ("my_tasks", "get", lambda w: reverse("onboarding:my_tasks"), {}, VIEW, 200),
    ("detail", "get", lambda w: _plan(w, "detail"), {}, VIEW, 200),
    ("edit", "get", lambda w: _plan(w, "edit"), {}, LEAD, 200),
    ("edit_post", "post", lambda w: _plan(w, "edit"), {}, LEAD, 302),
    ("report", "get", lambda w: _plan(w, "report"), {}, VIEW, 200),
    ("task", "get", lambda w: _plan(w, "task", w["task"].pk), {}, VIEW, 200),
    (
        "task_update",
        "post",
        lambda w: _plan(w, "task_update", w["task"].pk),
        {"status": "in_progress"},
        LEAD,
        302,
    ),
    (
        "task_certificate",
        "post",
        lambda w: _plan(w, "task_certificate", w["task"].pk),
        {},
        LEAD,
        400,
    ),
    ("evidence_upload", "post", lambda w: _plan(w, "evidence_upload", w["task"].pk), {}, LEAD, 400),
    ("task_letter", "post", lambda w: _plan(w, "task_letter", w["task"].pk), {}, LEAD, 302),
    ("evidence", "get", lambda w: _plan(w, "evidence", w["evidence"].pk), {}, VIEW, 200),
    ("decision", "get", lambda w: _plan(w, "decision", w["decision"].pk), {}, LEAD, 200),
    ("decision_post", "post", lambda w: _plan(w, "decision", w["decision"].pk), {}, LEAD, 400),
    (
        "letter_create",
        "post",
        lambda w: _plan(w, "letter_create"),
        {"kind": "nsd_change_query"},
        LEAD,
        302,
    ),
    ("letter", "get", lambda w: _plan(w, "letter", w["letter"].pk), {}, VIEW, 200),
    ("letter_edit", "post", lambda w: _plan(w, "letter_edit", w["letter"].pk), {}, LEAD, 400),
    (
        "letter_regenerate",
        "post",
        lambda w: _plan(w, "letter_regenerate", w["letter"].pk),
        {},
        LEAD,
        302,
    ),
    (
        "letter_download",
        "get",
        lambda w: _plan(w, "letter_download", w["letter"].pk),
        {},
        VIEW,
        200,
    ),
    (
        "letter_sent",
        "post",
        lambda w: _plan(w, "letter_sent", w["letter"].pk),
        {"sent_on": TODAY},
        LEAD,
        302,
    ),
    (
        "letter_reply",
        "post",
        lambda w: _plan(w, "letter_reply", w["letter"].pk),
        {"reply_text": "x", "replied_on": TODAY},
        LEAD,
        400,
    ),
    ("allow_list", "get", lambda w: _plan(w, "allow_list"), {}, VIEW, 200),
    (
        "allow_list_add",
        "post",
        lambda w: _plan(w, "allow_list_add"),
        {"network": "81.2.69.7", "purpose": "NAT", "environment": "live"},
        LEAD,
        302,
    ),
    (
        "allow_list_remove",
        "post",
        lambda w: _plan(w, "allow_list_remove", w["entry"].pk),
        {},
        LEAD,
        302,
    ),
    (
        "gate",
        "get",
        lambda w: reverse("onboarding:gate", args=[w["plan"].target_mailbox.pk]),
        {},
        VIEW,
        200,
    ),
    (
        "gate_override",
        "get",
        lambda w: reverse("onboarding:gate_override", args=[w["plan"].target_mailbox.pk]),
        {},
        GATE_ADMIN,
        200,
    ),
    (
        "gate_override_post",
        "post",
        lambda w: reverse("onboarding:gate_override", args=[w["plan"].target_mailbox.pk]),
        {"reason": "Clinical safety incident needs results tonight", "confirm": "on"},
        GATE_ADMIN,
        302,
    ),
    (
        "gate_revoke",
        "post",
        lambda w: reverse("onboarding:gate_revoke", args=[w["override"].pk]),
        {"reason": "done"},
        GATE_ADMIN,
        302,
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "url", "data", "allowed", "ok"), CASES, ids=[c[0] for c in CASES]
)
def test_it_checks_access_for_every_persona(
    client, request, world, name, method, url, data, allowed, ok
):
    """Every persona against one world: each request runs in a savepoint that is rolled back."""
    for persona in PERSONAS:
        if persona != "anonymous":
            request.getfixturevalue(persona)  # made outside the savepoint, so it survives
        with transaction.atomic():
            as_persona(client, request, persona)
            response = getattr(client, method)(url(world), data)
            try:
                assert_access(response, persona, allowed, ok)
            except AssertionError as exc:
                raise AssertionError(f"{name} as {persona}: {exc}") from None
            if persona in allowed and response["Content-Type"].startswith("text/html"):
                assert_no_inline_code(response.content.decode())
            transaction.set_rollback(True)


def test_the_navigation_offers_onboarding_to_those_who_may_view_it(
    client, lead_user, admin_user, auditor_user, outsider_user
):
    link = f'href="{reverse("onboarding:list")}"'
    for user in (lead_user, admin_user, auditor_user):
        client.force_login(user)
        assert link in client.get(reverse("onboarding:my_tasks")).content.decode()
    client.force_login(outsider_user)
    assert link not in client.get(reverse("accounts:login"), follow=True).content.decode()


def test_a_lead_starts_a_plan(client, lead_user):
    live = make_live_mailbox()
    client.force_login(lead_user)
    response = client.post(
        reverse("onboarding:create"),
        {
            "template": "client-change",
            "organisation": live.organisation.pk,
            "environment": "live",
            "target_mailbox": live.pk,
            "owner": lead_user.pk,
            "start_date": "2026-11-23",
        },
    )
    plan = Plan.objects.get()
    assert response["Location"] == reverse("onboarding:detail", args=[plan.pk])
    assert plan.created_by == lead_user
    assert plan.tasks.filter(owner=lead_user).count() == plan.tasks.count()
    assert AuditRecord.objects.filter(action="onboarding.plan_created").exists()
    again = client.post(
        reverse("onboarding:create"),
        {
            "template": "mesh-api",
            "organisation": live.organisation.pk,
            "environment": "live",
            "start_date": "2026-11-23",
        },
    )
    assert again.status_code == 400 and "already has a live plan" in again.content.decode()


def test_the_plan_page_highlights_overdue_and_waiting_tasks_and_shows_the_fork(
    client, lead_user, django_assert_max_num_queries
):
    plan = make_plan()
    overdue = task(plan, "review-submission")
    overdue.due_date, overdue.due_date_manual = timezone.localdate() - timedelta(days=3), True
    overdue.save()
    letter = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    client.force_login(lead_user)
    with django_assert_max_num_queries(25):
        html = client.get(reverse("onboarding:detail", args=[plan.pk])).content.decode()
    assert 'class="row-overdue"' in html and "Overdue · To do" in html
    assert 'class="row-waiting"' in html and "Waiting on NHS England" in html
    assert "Decision point: NHS England&#x27;s answer on the certificate" in html
    assert (
        "Certificate remains valid (Scenario A)" in html
        and "Certificate invalidated (Scenario B)" in html
    )
    assert "Waiting 0 working days of 10 (our estimate)" in html
    assert "Closed: no live transfers" in html
    assert "Done: 0 of 4" in html


def test_recording_the_decision_through_the_page_switches_to_scenario_a(client, lead_user):
    plan = make_plan()
    decision = plan.decisions.get()
    client.force_login(lead_user)
    url = reverse("onboarding:decision", args=[plan.pk, decision.pk])
    response = client.post(
        url,
        {
            "option": "valid",
            "reply_text": "The certificate remains valid.",
            "ticket_reference": "CS0123456",
            "reply_file": upload(
                "reply.eml",
                b"From: ssd.nationalservicedesk@nhs.net\r\nSubject: CS0123456\r\n\r\nValid.\r\n",
            ),
        },
    )
    assert response.status_code == 302
    assert task(plan, "witness-test").status == TaskStatus.NOT_APPLICABLE
    decision.refresh_from_db()
    assert decision.reply_evidence.original_filename == "reply.eml"
    assert decision.recorded_by == lead_user
    html = client.get(reverse("onboarding:detail", args=[plan.pk])).content.decode()
    assert "Chosen" in html and "Not taken" in html and f"Recorded by {lead_user.username}" in html
    # Scenario B's phase is skipped, not "100% done", and its tasks need no evidence.
    skipped = html.split('id="phase-2"')[1].split("</section>")[0]
    assert "Every task of this phase is not applicable" in skipped
    assert "<progress" not in skipped and "Needed" not in skipped
    assert "Needed" in html.split('id="phase-3"')[1].split("</section>")[0]
    listing = client.get(reverse("onboarding:list")).content.decode()
    assert "Phase 2: Scenario B: a new witnessed test · " in listing
    assert "Scenario B: a new witnessed test · 3 of 3" not in listing
    report = client.get(reverse("onboarding:report", args=[plan.pk])).content.decode()
    row = report.split("2. Scenario B: a new witnessed test")[1].split("</tr>")[0]
    assert "Not applicable" in row and "100%" not in row


def test_a_reply_file_that_is_not_what_it_claims_is_refused(client, lead_user):
    plan = make_plan()
    client.force_login(lead_user)
    response = client.post(
        reverse("onboarding:decision", args=[plan.pk, plan.decisions.get().pk]),
        {
            "option": "valid",
            "reply_text": "ok",
            "reply_file": upload("reply.pdf", PNG),
        },
    )
    assert response.status_code == 400
    assert "reply.pdf is not what it claims to be" in response.content.decode()
    assert not plan.decisions.get().is_recorded


def test_a_wrong_cn_is_refused_with_a_clear_message(client, lead_user):
    plan = make_plan()
    wrong = certificate_create_csr(mailbox=plan.integration_mailbox)
    client.force_login(lead_user)
    csr_task = task(plan, "production-csr")
    response = client.post(
        reverse("onboarding:task_certificate", args=[plan.pk, csr_task.pk]),
        {"certificate": wrong.pk},
    )
    html = response.content.decode()
    assert response.status_code == 400 and "There is a problem" in html
    assert (
        "uses mailbox id X26INT01, the integration mailbox&#x27;s id, but it must use the live mailbox id X26LIVE1"
        in html
    )
    assert task(plan, "production-csr").certificate is None
    right = certificate_create_csr(mailbox=plan.target_mailbox)
    response = client.post(
        reverse("onboarding:task_certificate", args=[plan.pk, csr_task.pk]),
        {"certificate": right.pk},
    )
    assert response.status_code == 302 and task(plan, "production-csr").certificate == right


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("203.0.113.300", "203.0.113.300 is not an IP address or CIDR range"),
        ("192.168.1.10", "192.168.1.10/32 is not a public address"),
        ("81.2.69.9/24", "has host bits set"),
        ("81.2.69.8", "81.2.69.8 is already in the register"),
    ],
)
def test_a_malformed_or_duplicate_address_is_refused(client, lead_user, network, message):
    plan = make_plan()
    services.allowlist_add(
        organisation=plan.organisation, environment="live", address="81.2.69.8", purpose="NAT"
    )
    client.force_login(lead_user)
    response = client.post(
        reverse("onboarding:allow_list_add", args=[plan.pk]),
        {"network": network, "purpose": "gateway", "environment": "live"},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert AllowListEntry.objects.count() == 1


def test_evidence_that_is_not_what_it_claims_is_refused(client, lead_user):
    plan = make_plan()
    review = task(plan, "review-submission")
    client.force_login(lead_user)
    url = reverse("onboarding:evidence_upload", args=[plan.pk, review.pk])
    response = client.post(
        url,
        {
            "kind": "conformance_certificate",
            "title": "TCC",
            "file": upload("tcc.pdf", b"<html>not a pdf</html>"),
        },
    )
    assert response.status_code == 400
    assert (
        "tcc.pdf is not what it claims to be: a PDF starts with %PDF-" in response.content.decode()
    )
    assert not plan.evidence.exists()
    response = client.post(
        url,
        {
            "kind": "conformance_certificate",
            "title": "TCC",
            "file": upload("tcc.pdf", PDF),
            "review_date": "",
        },
    )
    assert response.status_code == 302 and plan.evidence.get().original_filename == "tcc.pdf"


def test_evidence_downloads_are_audited(client, auditor_user):
    plan = make_plan()
    evidence = add_evidence(plan, name="Conformance <cert>.pdf")
    client.force_login(auditor_user)
    response = client.get(reverse("onboarding:evidence", args=[plan.pk, evidence.pk]))
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    record = AuditRecord.objects.get(action="onboarding.evidence_downloaded")
    assert record.actor == auditor_user and record.object_id == str(evidence.pk)
    other = make_plan(
        organisation=plan.organisation, environment="integration", live=False, integration=False
    )
    assert (
        client.get(reverse("onboarding:evidence", args=[other.pk, evidence.pk])).status_code == 404
    )


def test_the_email_downloads_as_eml_and_is_audited(client, lead_user):
    plan = make_plan()
    letter = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    lead_user.email = "olu@example.org"
    lead_user.save()
    client.force_login(lead_user)
    response = client.get(reverse("onboarding:letter_download", args=[plan.pk, letter.pk]))
    assert response["Content-Type"] == "message/rfc822"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="nsd_change_query-X26-{letter.pk}.eml"'
    )
    message = email.message_from_bytes(response.content, policy=email.policy.default)
    assert (
        message["To"] == "ssd.nationalservicedesk@nhs.net"
        and message["Cc"] == "itoc.supportdesk@nhs.net"
    )
    assert message["From"] == "olu-lead <olu@example.org>"
    assert AuditRecord.objects.filter(action="onboarding.correspondence_downloaded").exists()


def test_a_draft_is_edited_and_checked(client, lead_user):
    plan = make_plan()
    letter = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    client.force_login(lead_user)
    url = reverse("onboarding:letter_edit", args=[plan.pk, letter.pk])
    bad = client.post(
        url,
        {
            "to_addresses": "not-an-address",
            "subject": "Hi\r\nBcc: x@y.z",
            "body": "-----BEGIN RSA PRIVATE KEY-----",
        },
    )
    html = bad.content.decode()
    assert bad.status_code == 400 and "not-an-address is not an email address" in html
    assert "The subject must be one line." in html and "it may contain a secret" in html
    good = client.post(
        url,
        {
            "to_addresses": "ssd.nationalservicedesk@nhs.net; a@b.nhs.uk",
            "cc_addresses": "",
            "subject": "Edited",
            "body": "Edited body",
        },
    )
    assert good.status_code == 302
    letter.refresh_from_db()
    assert letter.to_addresses == "ssd.nationalservicedesk@nhs.net, a@b.nhs.uk"
    letters.correspondence_mark_sent(correspondence=letter, sent_on=timezone.localdate())
    assert client.post(url, {"subject": "x", "body": "y"}).status_code == 302
    letter.refresh_from_db()
    assert letter.subject == "Edited" and letter.status == Correspondence.Status.SENT


def test_user_text_is_escaped(client, lead_user):
    plan = make_plan()
    item = task(plan, "review-submission")
    client.force_login(lead_user)
    client.post(
        reverse("onboarding:task_update", args=[plan.pk, item.pk]),
        {"status": "in_progress", "notes": "<script>alert(1)</script>"},
    )
    services.allowlist_add(
        organisation=plan.organisation,
        environment="live",
        address="81.2.69.9",
        purpose="<img src=x onerror=alert(1)>",
    )
    html = client.get(reverse("onboarding:task", args=[plan.pk, item.pk])).content.decode()
    assert (
        "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    html = client.get(reverse("onboarding:allow_list", args=[plan.pk])).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_marking_a_task_done_too_early_says_why(client, lead_user):
    plan = make_plan()
    client.force_login(lead_user)
    response = client.post(
        reverse("onboarding:task_update", args=[plan.pk, task(plan, "assess-code").pk]),
        {"status": "done"},
    )
    assert response.status_code == 400
    assert (
        "Finish 1.2 “Review the original conformance submission” first."
        in response.content.decode()
    )


def test_the_plan_list_shows_progress_per_phase_in_a_fixed_number_of_queries(
    client, lead_user, django_assert_max_num_queries
):
    from tests.factories import make_organisation

    make_plan()
    client.force_login(lead_user)
    client.get(reverse("onboarding:list"))
    with django_assert_max_num_queries(12) as one:
        html = client.get(reverse("onboarding:list")).content.decode()
    assert "Phase 3: Scenario A: production credentials · 0 of 6" in html
    make_plan(
        organisation=make_organisation(name="Other", ods_code="Y12"), live=False, integration=False
    )
    with django_assert_max_num_queries(len(one.captured_queries)):
        client.get(reverse("onboarding:list"))


def test_my_tasks_is_offered_only_to_those_who_work_tasks(
    client, lead_user, admin_user, auditor_user
):
    plan = make_plan(owner=lead_user)
    my_tasks = f'href="{reverse("onboarding:my_tasks")}"'

    def offered(user) -> bool:
        client.force_login(user)
        return my_tasks in client.get(reverse("onboarding:list")).content.decode()

    assert offered(lead_user)
    assert not offered(auditor_user) and not offered(admin_user)
    owned = task(plan, "assess-code")
    owned.owner = admin_user
    owned.save()
    assert offered(admin_user)  # a mailbox admin who owns a task sees their tasks


def test_my_tasks_lists_only_mine(client, lead_user, admin_user):
    plan = make_plan(owner=lead_user)
    mine = task(plan, "nsd-query")
    theirs = task(plan, "assess-code")
    theirs.owner = admin_user
    theirs.save()
    client.force_login(lead_user)
    html = client.get(reverse("onboarding:my_tasks")).content.decode()
    assert mine.title in html and theirs.title not in html


def test_the_status_report_is_printable_with_evidence_urls(client, auditor_user):
    plan = make_plan()
    evidence = add_evidence(plan, task(plan, "review-submission"))
    client.force_login(auditor_user)
    html = client.get(reverse("onboarding:report", args=[plan.pk])).content.decode()
    assert 'class="report-section print-break"' in html
    assert f"http://testserver/onboarding/{plan.pk}/evidence/{evidence.pk}/" in html
    assert "js/onboarding.js" in html and "data-print" in html


def test_the_override_asks_for_a_reason_and_confirmation(client, admin_user):
    plan = make_plan()
    mailbox = plan.target_mailbox
    client.force_login(admin_user)
    url = reverse("onboarding:gate_override", args=[mailbox.pk])
    page = client.get(url).content.decode()
    assert "required onboarding tasks are not done" in page and "At least 20 characters" in page
    refused = client.post(url, {"reason": "because"})
    assert refused.status_code == 400 and not mailbox.gate_overrides.exists()
    client.post(url, {"reason": "Clinical safety incident needs results tonight", "confirm": "on"})
    override = mailbox.gate_overrides.get()
    assert override.created_by == admin_user
    html = client.get(reverse("onboarding:gate", args=[mailbox.pk])).content.decode()
    assert "Overridden: transfers allowed" in html and "Clinical safety incident" in html
    sandbox = make_mailbox("X26ABC1")
    assert client.get(reverse("onboarding:gate", args=[sandbox.pk])).status_code == 404
    assert client.get(reverse("onboarding:gate_override", args=[sandbox.pk])).status_code == 404


def test_a_lead_is_not_offered_not_applicable_on_a_required_task(client, lead_user, superuser):
    plan = make_plan()
    agreement = task(plan, "connection-agreement")
    url = reverse("onboarding:task", args=[plan.pk, agreement.pk])
    client.force_login(lead_user)
    html = client.get(url).content.decode()
    assert '<option value="na"' not in html and "Why is it not applicable?" not in html
    optional = task(plan, "monitoring")
    html = client.get(reverse("onboarding:task", args=[plan.pk, optional.pk])).content.decode()
    assert '<option value="na"' in html
    response = client.post(
        reverse("onboarding:task_update", args=[plan.pk, agreement.pk]),
        {"status": "na", "reason": "NHS England said we do not need it"},
    )
    assert response.status_code == 400
    assert "A5 is required before live transfers" in response.content.decode()
    assert task(plan, "connection-agreement").status == TaskStatus.TODO
    client.force_login(superuser)
    html = client.get(url).content.decode()
    assert '<option value="na"' in html and "At least 20 characters" in html
    response = client.post(
        reverse("onboarding:task_update", args=[plan.pk, agreement.pk]),
        {"status": "na", "reason": "Signed with the original test in 2025"},
    )
    assert response.status_code == 302
    assert task(plan, "connection-agreement").status == TaskStatus.NOT_APPLICABLE


def test_annual_evidence_needs_its_review_date(client, lead_user):
    plan = make_plan("mesh-api")
    dspt = task(plan, "dspt")
    client.force_login(lead_user)
    url = reverse("onboarding:evidence_upload", args=[plan.pk, dspt.pk])
    response = client.post(
        url,
        {
            "kind": "dspt",
            "title": "DSPT 2026-27",
            "file": upload("dspt.pdf", PDF),
            "review_date": "",
        },
    )
    assert response.status_code == 400
    assert (
        "The Data Security and Protection Toolkit lapses (it is renewed every 12 months): give "
        "the date it must be renewed by." in response.content.decode()
    )
    assert not plan.evidence.exists()
    review = (timezone.localdate() + timedelta(days=365)).isoformat()
    response = client.post(
        url,
        {
            "kind": "dspt",
            "title": "DSPT 2026-27",
            "file": upload("dspt.pdf", PDF),
            "review_date": review,
        },
    )
    assert response.status_code == 302 and plan.evidence.get().review_date.isoformat() == review


def test_only_usable_certificates_are_offered_for_a_csr_task(client, lead_user):
    plan = make_plan()
    old = certificate_create_csr(mailbox=plan.target_mailbox)
    old.status = Certificate.Status.SUPERSEDED
    old.save()
    current = certificate_create_csr(mailbox=plan.target_mailbox)
    csr_task = task(plan, "production-csr")
    client.force_login(lead_user)
    page = client.get(reverse("onboarding:task", args=[plan.pk, csr_task.pk]))
    assert list(page.context["link_form"].fields["certificate"].queryset) == [current]
    response = client.post(
        reverse("onboarding:task_certificate", args=[plan.pk, csr_task.pk]), {"certificate": old.pk}
    )
    # The refused link keeps the current CSR, which NeoMesh linked when it was made.
    assert response.status_code == 400 and task(plan, "production-csr").certificate == current


def test_a_rehearsal_task_links_to_the_conformance_self_test(client, lead_user, auditor_user):
    plan = make_plan("mesh-api")
    rehearse = task(plan, "rehearse")
    link = f'href="{reverse("conformance:new")}?task={rehearse.pk}"'
    url = reverse("onboarding:task", args=[plan.pk, rehearse.pk])
    client.force_login(lead_user)
    assert link in client.get(url).content.decode()
    other = client.get(reverse("onboarding:task", args=[plan.pk, task(plan, "dspt").pk]))
    assert reverse("conformance:new") not in other.content.decode()
    client.force_login(auditor_user)
    assert link not in client.get(url).content.decode()
