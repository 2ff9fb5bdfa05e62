from __future__ import annotations

import pytest

from tests.onboarding.helpers import make_plan

pytestmark = pytest.mark.django_db


def test_it_shows_each_plans_progress_to_those_who_may_see_plans(client, lead_user):
    plan = make_plan()
    client.force_login(lead_user)
    page = client.get("/").content.decode()
    assert "Onboarding" in page and str(plan) in page
    total = plan.tasks.count()
    closed = plan.tasks.filter(status__in=["done", "na"]).count()
    assert f"Tasks done or not applicable {closed} of {total}" in page


def test_it_hides_plans_from_roles_without_plan_access(client, outsider_user):
    from django.contrib.auth.models import Permission

    make_plan()
    outsider_user.user_permissions.add(Permission.objects.get(codename="view_mailbox"))
    client.force_login(outsider_user)
    assert 'id="onboarding"' not in client.get("/").content.decode()
