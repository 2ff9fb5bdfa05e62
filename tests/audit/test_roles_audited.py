"""Who may do what is audited: group memberships and permissions, through the admin or the ORM."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from portal.accounts.roles import AUDITOR, MAILBOX_ADMIN, ensure_roles
from portal.audit.models import AuditRecord
from portal.audit.verify import verify_chain
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def records_for(obj, **kwargs):
    return AuditRecord.objects.for_object(obj).filter(**kwargs).order_by("seq")


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def admin_user_form(user, groups) -> dict:
    joined = timezone.localtime(user.date_joined)
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [group.pk for group in groups],
        "user_permissions": [],
        "date_joined_0": joined.date().isoformat(),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "_save": "Save",
    }


def test_adding_a_user_to_a_role_in_the_admin_is_audited(client, superuser):
    ensure_roles()
    user = make_user(None, username="new-auditor")
    auditor = Group.objects.get(name=AUDITOR)
    client.force_login(superuser)
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = client.post(url, admin_user_form(user, [auditor]), REMOTE_ADDR="192.0.2.8")
    assert response.status_code == 302, response.content[:2000]
    assert list(user.groups.all()) == [auditor]
    entry = records_for(user, action="user.update", changes__has_key="groups").get()
    assert entry.changes["groups"] == {"added": [AUDITOR]}
    assert (entry.actor, entry.actor_kind, entry.ip_address) == (superuser, "person", "192.0.2.8")
    client.post(url, admin_user_form(user, []))
    removed = records_for(user, action="user.update", changes__has_key="groups").last()
    assert removed.changes["groups"] == {"removed": [AUDITOR]}
    assert verify_chain().ok


def test_group_and_user_permission_changes_are_audited():
    ensure_roles()
    group = Group.objects.get(name=MAILBOX_ADMIN)
    extra = permission("audit.export_auditrecord")
    group.permissions.add(extra)
    entry = records_for(group, action="group.update").last()
    assert entry.changes == {"permissions": {"added": [str(extra)]}}
    group.permissions.remove(extra)
    assert records_for(group, action="group.update").last().changes == {
        "permissions": {"removed": [str(extra)]}
    }
    user = make_user(None, username="direct-grant")
    user.user_permissions.add(extra)
    entry = records_for(user, action="user.update").last()
    assert entry.changes == {"user_permissions": {"added": [str(extra)]}}
    assert entry.actor_kind == "system"
    assert verify_chain().ok


def test_membership_changed_from_the_group_side_is_audited_too():
    ensure_roles()
    group = Group.objects.get(name=AUDITOR)
    user = make_user(None, username="via-group")
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    group.user_set.add(user)
    entry = AuditRecord.objects.filter(seq__gt=last).get()
    assert (entry.object_type, entry.object_id) == ("auth.group", str(group.pk))
    assert entry.changes == {"groups": {"added": ["via-group"]}}
