from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.accounts.access import assert_no_inline_code
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def nav_labels(response) -> list[str]:
    return [item["label"] for item in response.context["nav_items"]]


def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next=/"


def test_it_shows_the_login_page(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert b'<label for="id_username">' in response.content
    assert_no_inline_code(response.content.decode())


def test_it_refuses_signed_in_users_without_the_permission_with_a_403_page(client, outsider_user):
    client.force_login(outsider_user)
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 403
    assert b"You do not have access to this page" in response.content
    assert nav_labels(response) == []


def test_it_shows_the_user_and_role_and_a_sign_out_form(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "alice-admin" in html
    assert "Mailbox admin" in html
    assert f'<form method="post" action="{reverse("accounts:logout")}"' in html
    assert_no_inline_code(html)


def test_it_signs_out_with_a_post(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard:home")).status_code == 302


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (
            "admin_user",
            [
                "Dashboard",
                "Mailboxes",
                "Messages",
                "Certificates",
                "Integrations",
                "API tokens",
                "Alerts",
            ],
        ),
        ("lead_user", ["Dashboard", "Mailboxes", "Certificates", "Alerts"]),
        (
            "auditor_user",
            ["Dashboard", "Mailboxes", "Messages", "Certificates", "Integrations", "Alerts"],
        ),
        (
            "superuser",
            [
                "Dashboard",
                "Mailboxes",
                "Messages",
                "Certificates",
                "Integrations",
                "API tokens",
                "Alerts",
                "People",
                "Django admin",
            ],
        ),
    ],
)
def test_it_shows_only_the_navigation_a_role_may_use(client, request, persona, expected):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("dashboard:home"))
    labels = [
        label
        for label in nav_labels(response)
        if label not in ("Onboarding", "Conformance", "Audit")
    ]
    assert labels == expected


def test_it_marks_the_current_section_in_the_navigation(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("mailboxes:list"))
    current = [item["label"] for item in response.context["nav_items"] if item["current"]]
    assert current == ["Mailboxes"]
    assert b'aria-current="page">Mailboxes</a>' in response.content


def test_it_keeps_the_django_admin_for_superusers(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:index")).status_code == 200


def test_it_refuses_the_django_admin_to_staff_who_are_not_superusers(client):
    staff = make_user(None, username="stella-staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.all())
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_never_offers_editing_audit_records_in_the_admin(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:audit_auditrecord_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditrecord_add")).status_code == 403
