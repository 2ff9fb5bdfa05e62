"""The readiness gate the workers ask before every send and poll."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.onboarding import services
from portal.onboarding.errors import OnboardingError
from portal.onboarding.gate import (
    gate_override_create,
    gate_override_revoke,
    gate_report,
    transfer_blocked_reason,
)
from portal.onboarding.models import TaskStatus
from tests.factories import make_mailbox, make_user

from .helpers import close_all_required, install_certificate, make_live_mailbox, make_plan, task

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready_plan():
    """A live plan with every required task done and a valid certificate installed."""
    plan = make_plan()
    close_all_required(plan)
    install_certificate(plan.target_mailbox)
    return plan


def test_it_keeps_the_disabled_rule_and_leaves_other_environments_alone():
    sandbox = make_mailbox("X26ABC1")
    assert transfer_blocked_reason(sandbox) is None
    sandbox.enabled = False
    assert transfer_blocked_reason(sandbox) == "mailbox X26ABC1 is disabled"
    live = make_live_mailbox(enabled=False)
    assert transfer_blocked_reason(live) == "mailbox X26LIVE1 is disabled"


def test_a_live_mailbox_without_a_plan_is_blocked():
    live = make_live_mailbox()
    assert transfer_blocked_reason(live) == (
        "live mailbox X26LIVE1 has no live onboarding plan: start one under Onboarding, or ask an "
        "admin to override the readiness gate"
    )


def test_it_waits_for_every_required_task(ready_plan):
    mailbox = ready_plan.target_mailbox
    assert transfer_blocked_reason(mailbox) is None
    go_live = task(ready_plan, "go-live")
    go_live.status = TaskStatus.IN_PROGRESS
    go_live.save()
    assert transfer_blocked_reason(mailbox) == (
        "live mailbox X26LIVE1 is not ready: 1 required onboarding task is not done in the plan "
        "“Client change and production go-live”"
    )


def test_not_applicable_tasks_and_tasks_after_go_live_do_not_hold_the_gate(ready_plan):
    for key in ("book-witness-test", "witness-test"):
        item = task(ready_plan, key)
        item.status = TaskStatus.NOT_APPLICABLE
        item.save()
    monitoring = task(ready_plan, "monitoring")
    monitoring.status = TaskStatus.TODO
    monitoring.save()
    assert transfer_blocked_reason(ready_plan.target_mailbox) is None


def test_it_needs_an_active_unexpired_certificate_with_the_mailbox_cn(ready_plan):
    mailbox = ready_plan.target_mailbox
    mailbox.certificates.all().delete()
    assert (
        transfer_blocked_reason(mailbox)
        == "live mailbox X26LIVE1 has no active certificate installed"
    )
    certificate = install_certificate(mailbox, common_name="X26INT01.X26.api.mesh-client.nhs.uk")
    assert transfer_blocked_reason(mailbox) == (
        "live mailbox X26LIVE1's active certificate is for X26INT01.X26.api.mesh-client.nhs.uk, "
        "not X26LIVE1.X26.api.mesh-client.nhs.uk"
    )
    certificate.delete()
    install_certificate(mailbox, days=-1)
    assert transfer_blocked_reason(mailbox) == "live mailbox X26LIVE1's certificate has expired"


def test_an_admin_override_with_a_reason_opens_the_gate_until_revoked():
    live = make_live_mailbox()
    admin = make_user(username="ada")
    with pytest.raises(OnboardingError, match="at least 20 characters"):
        gate_override_create(mailbox=live, reason="urgent", actor=Actor.person(user=admin))
    override = gate_override_create(
        mailbox=live,
        reason="Clinical incident: results must flow tonight",
        actor=Actor.person(user=admin),
    )
    assert transfer_blocked_reason(live) is None
    report = gate_report(live)
    assert report.override == override and report.reasons and not report.blocked
    with pytest.raises(OnboardingError, match="already has an active override"):
        gate_override_create(
            mailbox=live, reason="Another long enough reason here", actor=Actor.person(user=admin)
        )
    gate_override_revoke(
        override=override, reason="Incident closed", actor=Actor.person(user=admin)
    )
    assert transfer_blocked_reason(live).startswith(
        "live mailbox X26LIVE1 has no live onboarding plan"
    )
    actions = list(
        AuditRecord.objects.filter(action__startswith="onboarding.gate_").values_list(
            "action", "reason", "actor_label"
        )
    )
    assert (
        "onboarding.gate_overridden",
        "Clinical incident: results must flow tonight",
        "ada",
    ) in actions
    assert ("onboarding.gate_override_revoked", "Incident closed", "ada") in actions
    with pytest.raises(OnboardingError, match="already revoked"):
        gate_override_revoke(override=override, actor=Actor.person(user=admin))


def test_an_override_never_lets_a_disabled_live_mailbox_transfer_on_the_page_or_in_the_workers(
    client, admin_user
):
    live = make_live_mailbox()
    gate_override_create(mailbox=live, reason="Clinical incident: results must flow tonight")
    live.enabled = False
    live.save()
    assert transfer_blocked_reason(live) == "mailbox X26LIVE1 is disabled"
    report = gate_report(live)
    assert report.override and report.disabled and report.blocked
    client.force_login(admin_user)
    html = client.get(reverse("onboarding:gate", args=[live.pk])).content.decode()
    assert "Closed: no live transfers" in html and "Overridden: transfers allowed" not in html
    assert "Mailbox X26LIVE1 is disabled." in html
    assert "An override does not lift a disabled mailbox" in html


def test_only_a_live_mailbox_can_be_overridden():
    with pytest.raises(OnboardingError, match="Only a live mailbox"):
        gate_override_create(mailbox=make_mailbox("X26ABC1"), reason="x" * 30)


def test_the_gate_costs_at_most_three_queries(ready_plan, django_assert_max_num_queries):
    from portal.mailboxes.models import Mailbox

    mailbox = Mailbox.objects.get(pk=ready_plan.target_mailbox.pk)
    with django_assert_max_num_queries(3):
        assert transfer_blocked_reason(mailbox) is None


def test_the_gate_report_lists_every_reason():
    plan = make_plan()
    mailbox = plan.target_mailbox
    mailbox.enabled = False
    reasons = gate_report(mailbox).reasons
    assert reasons[0] == "mailbox X26LIVE1 is disabled"
    assert "required onboarding tasks are not done" in reasons[1]
    assert reasons[2] == "live mailbox X26LIVE1 has no active certificate installed"


def test_a_second_live_mailbox_does_not_pass_on_another_mailboxs_plan(ready_plan):
    second = make_live_mailbox("X26LIVE2", organisation=ready_plan.organisation)
    install_certificate(second)
    assert transfer_blocked_reason(ready_plan.target_mailbox) is None
    assert transfer_blocked_reason(second) == (
        "live mailbox X26LIVE2 is not the live mailbox of the plan “Client change and production "
        "go-live” (it is for X26LIVE1): ask an admin to override the readiness gate"
    )
    assert gate_report(second).blocked


def test_a_plan_naming_no_live_mailbox_opens_no_gate():
    plan = make_plan(live=False)
    close_all_required(plan)
    live = make_live_mailbox(organisation=plan.organisation)
    install_certificate(live)
    assert transfer_blocked_reason(live) == (
        "live mailbox X26LIVE1 is not the live mailbox of the plan “Client change and production "
        "go-live” (it names no live mailbox yet): name it on the plan"
    )


def test_it_waits_for_the_certificate_to_become_valid(ready_plan):
    mailbox = ready_plan.target_mailbox
    certificate = mailbox.certificates.get()
    certificate.not_before = timezone.now() + timedelta(days=2)
    certificate.save()
    reason = transfer_blocked_reason(mailbox)
    assert reason.startswith("live mailbox X26LIVE1's certificate is not valid until ")
    certificate.not_before = timezone.now() - timedelta(minutes=1)
    certificate.save()
    assert transfer_blocked_reason(mailbox) is None


def test_a_lead_cannot_open_the_gate_by_marking_required_tasks_not_applicable(lead_user):
    plan = make_plan()
    install_certificate(plan.target_mailbox)
    close_all_required(plan)
    reason = "NHS England told us on the phone this is not needed for us"
    for key in ("connection-agreement", "send-live-csr", "nsd-query"):
        item = task(plan, key)
        item.status = TaskStatus.TODO
        item.save()
        with pytest.raises(OnboardingError, match="only an admin who may override the gate"):
            services.task_set_status(
                task=item,
                status=TaskStatus.NOT_APPLICABLE,
                reason=reason,
                actor=Actor.person(user=lead_user),
            )
        assert task(plan, key).status == TaskStatus.TODO
    assert "3 required onboarding tasks are not done" in transfer_blocked_reason(
        plan.target_mailbox
    )
