"""Tasks NeoMesh can check itself complete themselves when the fact is recorded; a person can reopen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.certificates.services import certificate_create_csr
from portal.mailboxes.services import mailbox_handshake
from portal.onboarding import selfcheck, services
from portal.onboarding.models import TaskStatus

from .helpers import close, make_int_mailbox, make_plan, task

pytestmark = pytest.mark.django_db
PUBLIC = "81.2.69.142"  # a public address (not in a documentation range)


def add_address(plan, environment="live", address=PUBLIC):
    return services.allowlist_add(
        organisation=plan.organisation,
        environment=environment,
        address=address,
        purpose="production NAT gateway",
    )


def audit(action):
    return AuditRecord.objects.filter(action=action)


def test_it_completes_the_allow_list_task_when_an_address_is_recorded():
    plan = make_plan()
    add_address(plan, environment="integration")  # another environment's register: not this task
    assert task(plan, "production-ips").status == TaskStatus.TODO
    add_address(plan, address="81.2.69.143")
    ips = task(plan, "production-ips")
    assert ips.status == TaskStatus.DONE and ips.completed_by is None and ips.completed_at
    assert ips.checked_evidence == (
        "Recorded on the live allow-list: 81.2.69.143 (production NAT gateway)"
    )
    record = audit("onboarding.task_checked_done").get()
    assert record.actor_kind == "worker" and record.actor_label.startswith("worker ")
    assert record.object_id == str(ips.pk) and "81.2.69.143" in record.detail


def test_it_links_a_new_csr_for_the_plans_mailbox_and_completes_the_task_when_free():
    plan = make_plan("mesh-api")
    integration = task(plan, "int-csr")
    for dependency in integration.depends_on.all():
        close(dependency)
    other = certificate_create_csr(mailbox=make_int_mailbox("X26INT09"))  # not the plan's
    assert task(plan, "int-csr").certificate is None
    csr = certificate_create_csr(mailbox=plan.integration_mailbox, actor=Actor.command())
    integration = task(plan, "int-csr")
    assert integration.certificate == csr and integration.certificate != other
    assert integration.status == TaskStatus.DONE
    assert integration.checked_evidence.startswith(f"CSR {csr.common_name} generated on ")
    # The live CSR task waits for its dependencies: linked, not done.
    live_csr = certificate_create_csr(mailbox=plan.target_mailbox)
    production = task(plan, "live-csr")
    assert production.certificate == live_csr and production.status == TaskStatus.TODO


@pytest.mark.sandbox
def test_a_successful_handshake_completes_the_handshake_task(sandbox_mailboxes):
    mailbox, _ = sandbox_mailboxes
    # A plan for the sandbox environment, so a real mesh-sandbox answers its handshake.
    plan = make_plan(
        organisation=mailbox.organisation,
        environment="sandbox",
        target_mailbox=mailbox,
        integration=False,
    )
    services.decision_record(decision=plan.decisions.get(), option_key="valid", reply_text="ok")
    go_live = task(plan, "go-live")
    for dependency in go_live.depends_on.all():
        close(dependency)
    ok, _ = mailbox_handshake(mailbox=mailbox)
    go_live = task(plan, "go-live")
    assert ok and go_live.status == TaskStatus.DONE, services.task_blockers(go_live)
    assert go_live.checked_evidence.startswith("Handshake with X26ABC1 succeeded on ")
    assert audit("onboarding.task_checked_done").get().object_id == str(go_live.pk)


def test_a_person_reopens_it_and_only_a_new_fact_completes_it_again(client, lead_user):
    plan = make_plan()
    add_address(plan)
    ips = task(plan, "production-ips")
    client.force_login(lead_user)
    page = client.get(reverse("onboarding:task", args=[plan.pk, ips.pk])).content.decode()
    assert (
        "Completed by NeoMesh" in page and reverse("onboarding:allow_list", args=[plan.pk]) in page
    )
    response = client.post(
        reverse("onboarding:task_reopen", args=[plan.pk, ips.pk]), {"reason": "wrong NAT address"}
    )
    assert response.status_code == 302
    ips = task(plan, "production-ips")
    assert ips.status == TaskStatus.TODO and ips.checked_evidence == "" and ips.reopened_at
    reopened = audit("onboarding.task_reopened").get()
    assert (reopened.actor_kind, reopened.actor_label) == ("person", lead_user.username)
    assert reopened.reason == "wrong NAT address"
    # Another task done by the person: the reopened task stays open (no new fact).
    assert selfcheck.plan_complete_checked(plan=plan) == []
    add_address(plan, address="81.2.69.150")
    assert task(plan, "production-ips").status == TaskStatus.DONE


def test_a_task_marked_done_by_a_person_frees_a_checked_task_waiting_on_it(client, lead_user):
    plan = make_plan()
    services.decision_record(decision=plan.decisions.get(), option_key="valid", reply_text="ok")
    certificate_create_csr(mailbox=plan.target_mailbox)
    production = task(plan, "production-csr")
    assert production.certificate and production.status == TaskStatus.TODO
    close(task(plan, "assess-code"))
    last = task(plan, "request-live-mailbox")  # the CSR task's one dependency
    client.force_login(lead_user)
    response = client.post(
        reverse("onboarding:task_update", args=[plan.pk, last.pk]),
        {"status": "done", "owner": "", "due_date": "", "notes": ""},
        follow=True,
    )
    assert task(plan, last.key).status == TaskStatus.DONE, response.content.decode()[:3000]
    assert task(plan, "production-csr").status == TaskStatus.DONE
    assert "done too: NeoMesh checked it" in response.content.decode()
