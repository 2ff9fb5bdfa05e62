"""Roles are groups whose permissions `ensure_roles` sets, as often as it runs (after every migrate)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from portal.accounts.roles import AUDITOR, MAILBOX_ADMIN, ROLE_PERMISSIONS, ensure_roles
from portal.audit.models import AuditRecord

pytestmark = pytest.mark.django_db


def granted(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def test_every_permission_a_role_names_exists():
    """A misspelt name would be skipped silently: the role would lack it."""
    for name, perms in ROLE_PERMISSIONS.items():
        for dotted in perms:
            assert permission(dotted), f"{name}: {dotted}"


def test_it_creates_each_role_with_exactly_its_permissions():
    ensure_roles()
    for name, perms in ROLE_PERMISSIONS.items():
        assert granted(name) == set(perms), name


def test_it_is_idempotent():
    ensure_roles()
    before = {name: granted(name) for name in ROLE_PERMISSIONS}
    groups, last = Group.objects.count(), AuditRecord.objects.order_by("-seq").first()
    ensure_roles()
    ensure_roles()
    assert Group.objects.count() == groups
    assert {name: granted(name) for name in ROLE_PERMISSIONS} == before
    assert AuditRecord.objects.order_by("-seq").first() == last, "nothing changed, nothing audited"


def test_it_restores_drifted_permissions_and_the_repair_is_audited():
    ensure_roles()
    auditor, admin = Group.objects.get(name=AUDITOR), Group.objects.get(name=MAILBOX_ADMIN)
    auditor.permissions.remove(permission("audit.view_auditrecord"))
    auditor.permissions.add(permission("messaging.download_payload"))
    admin.permissions.clear()
    ensure_roles()
    assert granted(AUDITOR) == set(ROLE_PERMISSIONS[AUDITOR])
    assert granted(MAILBOX_ADMIN) == set(ROLE_PERMISSIONS[MAILBOX_ADMIN])
    repair = AuditRecord.objects.for_object(auditor).filter(action="group.update")
    assert any(
        "Can view audit record" in str(entry.changes.get("permissions", {}).get("added"))
        for entry in repair
    )


def test_it_recreates_a_deleted_role():
    ensure_roles()
    Group.objects.filter(name=AUDITOR).delete()
    ensure_roles()
    assert granted(AUDITOR) == set(ROLE_PERMISSIONS[AUDITOR])


def test_auditors_never_get_payload_content_or_changes():
    perms = set(ROLE_PERMISSIONS[AUDITOR])
    assert "messaging.download_payload" not in perms
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in perms)
