from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.certificates.models import Certificate
from portal.mailboxes.models import Environment, Mailbox
from portal.onboarding.models import AllowListEntry, Correspondence, Plan, TaskStatus

pytestmark = pytest.mark.django_db


def test_it_needs_the_demo_organisation():
    with pytest.raises(CommandError, match="Run seed_demo first"):
        call_command("seed_onboarding_demo")


def test_it_adds_the_demo_mailboxes_and_plan_once():
    call_command("seed_demo")
    for _ in range(2):
        call_command("seed_onboarding_demo", "--plan")
    live = Mailbox.objects.get(mailbox_id="X26LIVE1")
    assert live.environment == Environment.LIVE and not live.password and not live.shared_key
    assert Mailbox.objects.get(mailbox_id="X26INT01").environment == Environment.INTEGRATION
    plan = Plan.objects.get()
    assert (
        plan.target_mailbox == live
        and plan.tasks.filter(owner__username="onboarding-lead").exists()
    )


def test_make_run_seeds_a_plan_some_weeks_in_with_the_live_csr_once():
    call_command("seed_demo")
    for _ in range(2):
        call_command("seed_onboarding_demo", "--plan", "--realistic")
    plan = Plan.objects.get()
    assert plan.organisation.ods_code == "X26" and plan.decisions.get().chosen == "valid"
    letter = Correspondence.objects.get()
    assert letter.status == Correspondence.Status.REPLIED and letter.plan == plan
    statuses = dict(plan.tasks.values_list("key", "status"))
    assert statuses["nsd-query"] == TaskStatus.DONE
    assert statuses["witness-test"] == TaskStatus.NOT_APPLICABLE  # Scenario A chosen
    assert AllowListEntry.objects.get().organisation == plan.organisation
    csr = Certificate.objects.get()
    assert csr.mailbox.mailbox_id == "X26LIVE1"
    assert plan.tasks.get(key="production-csr").certificate == csr
