from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.mailboxes.models import Environment, Mailbox
from portal.onboarding.models import Plan

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
