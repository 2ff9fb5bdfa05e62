"""Tasks: due dates from turnaround, dependencies, evidence, system checks and decisions."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from portal.accounts.roles import MAILBOX_ADMIN, ONBOARDING_LEAD
from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.certificates.models import Certificate
from portal.certificates.services import certificate_create_csr
from portal.onboarding import services
from portal.onboarding.errors import OnboardingError
from portal.onboarding.evidence import evidence_bytes
from portal.onboarding.models import EvidenceKind, TaskStatus
from portal.onboarding.workdays import add_working_days
from tests.factories import make_organisation, make_user

from .helpers import add_evidence, close, install_certificate, make_plan, task

pytestmark = pytest.mark.django_db
MONDAY = date(2026, 11, 23)


@pytest.fixture
def plan():
    return make_plan(start_date=MONDAY)


def test_it_suggests_due_dates_from_turnaround_in_working_days(plan):
    # 1.1 has no published turnaround (our 10-day estimate); 1.2 then 1.3 chain 3 + 5 days.
    assert task(plan, "nsd-query").due_date == date(2026, 12, 7)
    assert task(plan, "review-submission").due_date == date(2026, 11, 26)
    assert task(plan, "assess-code").due_date == add_working_days(date(2026, 11, 26), 5)
    # B3: 5 published working days after the test on 18 December, over Christmas.
    assert task(plan, "witness-test").due_date == date(2026, 12, 18)
    assert task(plan, "new-conformance-certificate").due_date == date(2026, 12, 29)
    first = task(plan, "request-live-mailbox")
    assert (first.turnaround_days, first.turnaround_published) == (5, True)
    assert first.due_date == add_working_days(date(2026, 12, 29), 5)


def test_it_keeps_a_due_date_set_by_hand(plan):
    query = task(plan, "nsd-query")
    services.task_update(task=query, status=query.status, due_date=date(2027, 2, 1))
    services.plan_suggest_due_dates(plan=plan, today=MONDAY + timedelta(days=3))
    query.refresh_from_db()
    assert query.due_date == date(2027, 2, 1) and query.due_date_manual


def test_a_task_cannot_be_done_before_its_dependencies(plan):
    assess = task(plan, "assess-code")
    with pytest.raises(
        OnboardingError, match="Finish 1.2 “Review the original conformance submission” first"
    ):
        services.task_set_status(task=assess, status=TaskStatus.DONE)
    close(task(plan, "review-submission"), TaskStatus.NOT_APPLICABLE)
    services.task_set_status(task=task(plan, "assess-code"), status=TaskStatus.DONE)
    assert task(plan, "assess-code").status == TaskStatus.DONE


def test_a_task_needing_evidence_waits_for_it_and_for_renewal(plan):
    review = task(plan, "review-submission")
    with pytest.raises(OnboardingError, match="Attach the Technical Conformance Certificate"):
        services.task_set_status(task=review, status=TaskStatus.DONE)
    add_evidence(plan, review, review_date=timezone.localdate() - timedelta(days=1))
    with pytest.raises(OnboardingError, match="lapsed on"):
        services.task_set_status(task=task(plan, "review-submission"), status=TaskStatus.DONE)
    add_evidence(plan, review)
    services.task_set_status(task=task(plan, "review-submission"), status=TaskStatus.DONE)


def test_not_applicable_needs_a_reason_and_never_skips_a_system_check(plan, lead_user):
    monitoring = task(plan, "monitoring")  # after go-live: it does not hold the gate
    with pytest.raises(OnboardingError, match="Say why"):
        services.task_set_status(
            task=monitoring, status=TaskStatus.NOT_APPLICABLE, actor=Actor.person(user=lead_user)
        )
    services.task_set_status(
        task=monitoring,
        status=TaskStatus.NOT_APPLICABLE,
        actor=Actor.person(user=lead_user),
        reason="Monitored by the ops team",
    )
    assert "Not applicable (olu-lead" in task(plan, "monitoring").notes
    audit = AuditRecord.objects.get(action="onboarding.task_not_applicable")
    assert audit.reason == "Monitored by the ops team" and audit.actor == lead_user
    admin = make_user(superuser=True)
    with pytest.raises(OnboardingError, match="cannot be marked not applicable"):
        services.task_set_status(
            task=task(plan, "go-live"),
            status=TaskStatus.NOT_APPLICABLE,
            reason="in a hurry, and we know what we are doing",
            actor=Actor.person(user=admin),
        )


def test_only_an_admin_marks_a_required_task_not_applicable_with_a_reason(plan, lead_user):
    review = task(plan, "review-submission")
    with pytest.raises(OnboardingError, match="1.2 is required before live transfers"):
        services.task_set_status(
            task=review,
            status=TaskStatus.NOT_APPLICABLE,
            reason="Done last year, see the old folder",
            actor=Actor.person(user=lead_user),
        )
    with pytest.raises(OnboardingError, match="1.2 is required"):
        services.task_set_status(task=review, status=TaskStatus.NOT_APPLICABLE, reason="x" * 30)
    assert task(plan, "review-submission").status == TaskStatus.TODO
    # A person who is both an onboarding lead and a mailbox admin may, with a reason in full.
    both = make_user(ONBOARDING_LEAD, username="nia")
    both.groups.add(Group.objects.get(name=MAILBOX_ADMIN))
    with pytest.raises(OnboardingError, match="at least 20 characters"):
        services.task_set_status(
            task=task(plan, "review-submission"),
            status=TaskStatus.NOT_APPLICABLE,
            reason="Done",
            actor=Actor.person(user=both),
        )
    reason = "Reviewed in full last year; NHS England confirmed by email"
    services.task_set_status(
        task=task(plan, "review-submission"),
        status=TaskStatus.NOT_APPLICABLE,
        reason=reason,
        actor=Actor.person(user=both),
    )
    assert task(plan, "review-submission").status == TaskStatus.NOT_APPLICABLE
    audit = AuditRecord.objects.get(action="onboarding.task_not_applicable")
    assert audit.actor == both and audit.reason == reason
    assert "the readiness gate no longer waits for it" in audit.detail


def test_tasks_closed_by_the_decision_need_no_admin(plan, lead_user):
    services.decision_record(
        decision=plan.decisions.get(),
        option_key="valid",
        reply_text="ok",
        actor=Actor.person(user=lead_user),
    )
    assert task(plan, "witness-test").status == TaskStatus.NOT_APPLICABLE
    assert task(plan, "witness-test").closed_by_decision


def test_annual_evidence_counts_only_with_its_review_date():
    plan = make_plan("mesh-api")
    dspt = task(plan, "dspt")
    add_evidence(
        plan,
        dspt,
        kind=EvidenceKind.DSPT,
        name="dspt.pdf",
        review_date=timezone.localdate() + timedelta(days=300),
    )
    assert services.task_blockers(dspt) == []
    # One kept without a date (before the rule) does not complete the task.
    undated = task(plan, "clinical-risk")
    evidence = add_evidence(
        plan,
        undated,
        kind=EvidenceKind.CLINICAL_SAFETY,
        name="hazards.pdf",
        review_date=timezone.localdate(),
    )
    evidence.review_date = None
    evidence.save()
    assert services.task_blockers(undated) == [
        "The attached Clinical safety (DCB0129) has no review date, and it lapses every 12 months: "
        "upload it again with the date it must be renewed by."
    ]
    with pytest.raises(OnboardingError, match="has no review date"):
        services.task_set_status(task=undated, status=TaskStatus.DONE)
    with pytest.raises(OnboardingError, match=r"renewed every 12 months\): give the date"):
        add_evidence(plan, dspt, kind=EvidenceKind.DSPT, name="dspt.pdf")
    with pytest.raises(OnboardingError, match="renewed every 12 months"):
        add_evidence(plan, None, kind=EvidenceKind.DSPT, name="dspt.pdf")


def test_a_superseded_or_expired_certificate_cannot_be_linked(plan):
    old = certificate_create_csr(mailbox=plan.target_mailbox)
    old.status = Certificate.Status.SUPERSEDED
    old.save()
    lapsed = install_certificate(plan.target_mailbox, days=-1)
    # Each new CSR was linked to the task by NeoMesh when made (test_selfcheck.py): unlink it.
    plan.tasks.filter(key="production-csr").update(certificate=None)
    csr_task = task(plan, "production-csr")
    with pytest.raises(OnboardingError, match="is superseded: link the current CSR"):
        services.task_link_certificate(task=csr_task, certificate=old)
    with pytest.raises(OnboardingError, match="is expired"):
        services.task_link_certificate(task=csr_task, certificate=lapsed)
    assert task(plan, "production-csr").certificate is None


def test_a_scenario_task_waits_for_the_decision(plan):
    close(task(plan, "assess-code"))
    with pytest.raises(OnboardingError, match="Record the decision first"):
        services.task_set_status(task=task(plan, "book-witness-test"), status=TaskStatus.DONE)


def test_the_answer_certificate_valid_switches_to_scenario_a(plan):
    user = make_user(username="olu")
    decision = plan.decisions.get()
    services.decision_record(
        decision=decision,
        option_key="valid",
        ticket_reference="CS0123456",
        actor=Actor.person(user=user),
        reply_text="Your certificate remains valid for the Python client.",
    )
    statuses = dict(plan.tasks.values_list("key", "status"))
    assert {
        statuses[k] for k in ("book-witness-test", "witness-test", "new-conformance-certificate")
    } == {TaskStatus.NOT_APPLICABLE}
    assert statuses["request-live-mailbox"] == statuses["production-csr"] == TaskStatus.TODO
    assert statuses["nsd-query"] == TaskStatus.DONE  # the question is answered
    decision.refresh_from_db()
    assert decision.recorded_by == user and decision.recorded_at and decision.chosen == "valid"
    evidence = decision.reply_evidence
    assert evidence.kind == EvidenceKind.REPLY and evidence.task.key == "nsd-query"
    assert evidence_bytes(evidence) == b"Your certificate remains valid for the Python client."
    audit = AuditRecord.objects.get(action="onboarding.decision_recorded")
    assert audit.actor == user and "Certificate remains valid" in audit.detail
    # The A chain no longer waits for scenario B's witnessed test.
    assert task(plan, "request-live-mailbox").due_date < date(2026, 12, 29)


def test_the_answer_certificate_invalidated_keeps_both_scenarios_and_can_change(plan):
    decision = plan.decisions.get()
    services.decision_record(decision=decision, option_key="valid", reply_text="valid")
    services.decision_record(
        decision=decision, option_key="invalidated", reply_text="New test needed."
    )
    statuses = dict(plan.tasks.values_list("key", "status"))
    assert statuses["book-witness-test"] == statuses["request-live-mailbox"] == TaskStatus.TODO
    assert not plan.tasks.filter(status=TaskStatus.NOT_APPLICABLE).exists()
    with pytest.raises(OnboardingError, match="Choose one of"):
        services.decision_record(decision=decision, option_key="maybe", reply_text="?")
    with pytest.raises(OnboardingError, match="Paste NHS England's reply"):
        services.decision_record(decision=decision, option_key="valid", reply_text=" ")


def test_the_production_csr_must_use_the_live_mailbox_id_and_ods_code(plan):
    csr_task = task(plan, "production-csr")
    wrong_mailbox = certificate_create_csr(mailbox=plan.integration_mailbox)
    with pytest.raises(OnboardingError) as excinfo:
        services.task_link_certificate(task=csr_task, certificate=wrong_mailbox)
    assert str(excinfo.value) == (
        "The CN X26INT01.X26.api.mesh-client.nhs.uk uses mailbox id X26INT01, the integration "
        "mailbox's id, but it must use the live mailbox id X26LIVE1: mailbox ids differ per environment."
    )
    wrong_ods = certificate_create_csr(mailbox=plan.target_mailbox)
    wrong_ods.common_name = "X26LIVE1.Y99.api.mesh-client.nhs.uk"
    with pytest.raises(OnboardingError, match="uses ODS code Y99, but Demo Org's ODS code is X26"):
        services.task_link_certificate(task=csr_task, certificate=wrong_ods)
    wrong_form = certificate_create_csr(mailbox=plan.target_mailbox)
    wrong_form.common_name = "x26live1.thirdparty.nhs.uk"
    with pytest.raises(OnboardingError, match="is not in the MESH form"):
        services.task_link_certificate(task=csr_task, certificate=wrong_form)

    right = certificate_create_csr(mailbox=plan.target_mailbox)
    services.task_link_certificate(task=csr_task, certificate=right)
    services.decision_record(decision=plan.decisions.get(), option_key="valid", reply_text="ok")
    close(task(plan, "request-live-mailbox"))
    services.task_set_status(task=task(plan, "production-csr"), status=TaskStatus.DONE)


def test_the_csr_task_needs_the_live_mailbox_named_first():
    plan = make_plan(live=False)
    problem = services.task_blockers(task(plan, "production-csr"))
    assert "Name the plan's live mailbox first: the CN must use its mailbox id." in problem


def test_go_live_needs_a_recent_successful_live_handshake(plan):
    services.decision_record(decision=plan.decisions.get(), option_key="valid", reply_text="ok")
    for key in (
        "install-live-certificate",
        "connection-agreement",
        "live-shared-secret",
        "production-ips",
    ):
        close(task(plan, key))
    go_live = task(plan, "go-live")
    assert services.task_blockers(go_live) == [
        "No handshake with X26LIVE1 yet: a mailbox admin runs one from its page."
    ]
    mailbox = plan.target_mailbox
    mailbox.last_handshake_at, mailbox.last_handshake_ok = timezone.now(), False
    mailbox.save()
    assert "failed" in services.task_blockers(task(plan, "go-live"))[0]
    mailbox.last_handshake_at, mailbox.last_handshake_ok = (
        timezone.now() - timedelta(hours=30),
        True,
    )
    mailbox.save()
    assert "more than 24 hours old" in services.task_blockers(task(plan, "go-live"))[0]
    mailbox.last_handshake_at = timezone.now() - timedelta(minutes=5)
    mailbox.save()
    services.task_set_status(task=task(plan, "go-live"), status=TaskStatus.DONE)


def test_installing_the_live_certificate_is_checked(plan):
    services.decision_record(decision=plan.decisions.get(), option_key="valid", reply_text="ok")
    close(task(plan, "send-live-csr"))
    install = task(plan, "install-live-certificate")
    assert services.task_blockers(install) == [
        "The live mailbox X26LIVE1 has no active certificate yet."
    ]
    install_certificate(plan.target_mailbox, days=-1)
    assert "expired on" in services.task_blockers(task(plan, "install-live-certificate"))[0]


def test_the_allow_list_task_needs_an_entry_for_the_plan_environment(plan):
    ips = task(plan, "production-ips")
    assert "Add the live addresses to the IP allow-list register first." in services.task_blockers(
        ips
    )
    services.allowlist_add(
        organisation=plan.organisation,
        environment="integration",
        address="81.2.69.7",
        purpose="test rig",
    )
    assert services.task_blockers(ips)
    services.allowlist_add(
        organisation=plan.organisation,
        environment="live",
        address="81.2.69.8",
        purpose="production NAT",
    )
    assert services.task_blockers(ips) == []


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("203.0.113.256", "203.0.113.256 is not an IP address or CIDR range"),
        ("not an ip", "not an IP address or CIDR range"),
        ("81.2.69.5/24", "has host bits set: the range it is in is 81.2.69.0/24"),
        ("10.1.2.3", "10.1.2.3/32 is not a public address"),
        ("127.0.0.1", "is not a public address"),
        ("0.0.0.0/0", "too wide"),
        ("", "Enter an IP address or CIDR range"),
        ("203.0.113.10", "203.0.113.10/32 is reserved for documentation and examples"),
        ("198.51.100.0/24", "198.51.100.0/24 is reserved for documentation and examples"),
        ("192.0.2.1", "192.0.2.1/32 is reserved for documentation and examples"),
        ("2001:db8::1", "2001:db8::1/128 is reserved for documentation and examples"),
        ("203.0.0.0/16", "203.0.0.0/16 includes addresses reserved for documentation"),
        ("100.64.0.1", "is not a public address"),
        ("240.0.0.1", "is not a public address"),
        ("169.254.0.1", "is not a public address"),
        ("::ffff:10.0.0.1", "is not a public address"),
        ("fe80::1", "is not a public address"),
        ("1.2.3.4/8", "range it is in (1.0.0.0/8) is too wide for an allow-list. Enter the single"),
        ("10.1.2.3/8", "10.1.2.3/32 is not a public address"),
    ],
)
def test_it_rejects_malformed_or_private_addresses(address, message):
    with pytest.raises(OnboardingError, match=re.escape(message)):
        services.parse_network(address)


@pytest.mark.parametrize("address", ["81.2.69.5/24", "1.2.3.4/8", "2a00:1098::1/16"])
def test_the_host_bits_suggestion_is_itself_accepted(address):
    with pytest.raises(OnboardingError) as refused:
        services.parse_network(address)
    suggested = re.search(
        r"the range it is in is (\S+)\. Enter|single address (\S+), or", str(refused.value)
    )
    assert services.parse_network(next(filter(None, suggested.groups())))


def test_it_keeps_the_register_free_of_duplicates_and_overlaps():
    org = make_organisation()
    entry = services.allowlist_add(
        organisation=org, environment="live", address=" 81.2.69.8 ", purpose="NAT"
    )
    assert entry.network == "81.2.69.8"
    with pytest.raises(OnboardingError, match="81.2.69.8 is already in the register"):
        services.allowlist_add(
            organisation=org, environment="live", address="81.2.69.8/32", purpose="x"
        )
    with pytest.raises(OnboardingError, match="overlaps an entry in the register: 81.2.69.8"):
        services.allowlist_add(
            organisation=org, environment="live", address="81.2.69.0/28", purpose="x"
        )
    services.allowlist_add(
        organisation=org, environment="integration", address="81.2.69.8", purpose="x"
    )
    v6 = services.allowlist_add(
        organisation=org, environment="live", address="2A00:1098::1", purpose="v6"
    )
    assert v6.network == "2a00:1098::1"
    with pytest.raises(OnboardingError, match="Say what the address is for"):
        services.allowlist_add(
            organisation=org, environment="live", address="81.2.69.1", purpose=" "
        )
