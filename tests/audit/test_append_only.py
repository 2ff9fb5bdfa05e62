"""Append-only at every door: no page and no admin view changes or removes an audit record."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditRecord, Verification
from portal.audit.services import Actor, record
from portal.audit.verify import verify_and_record, verify_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(db) -> AuditRecord:
    return record(
        action="test.event", actor=Actor(kind="system", label="tester"), detail="original"
    )


def unchanged(entry: AuditRecord) -> bool:
    stored = AuditRecord.objects.get(pk=entry.pk)
    return (stored.detail, stored.hash) == (entry.detail, entry.hash) and verify_chain().ok


def test_the_admin_shows_a_record_read_only_even_to_a_superuser(client, superuser, entry):
    client.force_login(superuser)
    response = client.get(reverse("admin:audit_auditrecord_change", args=[entry.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html and 'name="detail"' not in html
    assert reverse("admin:audit_auditrecord_delete", args=[entry.pk]) not in html


def test_the_admin_refuses_to_change_a_record_even_for_a_superuser(client, superuser, entry):
    client.force_login(superuser)
    url = reverse("admin:audit_auditrecord_change", args=[entry.pk])
    response = client.post(url, {"detail": "forged", "action": "test.event", "_save": "Save"})
    assert response.status_code == 403
    assert unchanged(entry)


def test_the_admin_refuses_to_delete_a_record_even_for_a_superuser(client, superuser, entry):
    client.force_login(superuser)
    url = reverse("admin:audit_auditrecord_delete", args=[entry.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert unchanged(entry)


def test_the_admin_offers_no_bulk_delete_of_records(client, superuser, entry):
    client.force_login(superuser)
    url = reverse("admin:audit_auditrecord_changelist")
    assert "delete_selected" not in client.get(url).content.decode()
    client.post(url, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert unchanged(entry)


def test_the_admin_refuses_to_add_a_record(client, superuser, entry):
    client.force_login(superuser)
    url = reverse("admin:audit_auditrecord_add")
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "forged", "actor_label": "x"}).status_code == 403
    assert not AuditRecord.objects.filter(action="forged").exists()


def test_the_admin_never_changes_or_deletes_verification_results(client, superuser):
    verify_and_record()
    result = Verification.objects.get()
    client.force_login(superuser)
    change = reverse("admin:audit_verification_change", args=[result.pk])
    delete = reverse("admin:audit_verification_delete", args=[result.pk])
    assert client.post(change, {"ok": "on", "records_checked": "0"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Verification.objects.get().records_checked == result.records_checked


def test_the_chain_head_is_not_in_the_admin(client, superuser):
    from django.contrib import admin

    from portal.audit.models import ChainHead

    assert not admin.site.is_registered(ChainHead)


def test_no_portal_page_accepts_a_change_to_the_audit_trail(client, superuser, entry):
    client.force_login(superuser)
    for url in (reverse("audit:trail"), reverse("audit:detail", args=[entry.seq])):
        for method in ("post", "put", "patch", "delete"):
            assert getattr(client, method)(url, {"detail": "forged"}).status_code == 405
    assert unchanged(entry)


def test_the_django_admin_is_for_superusers_only(client, auditor_user, admin_user):
    for user in (auditor_user, admin_user):
        user.is_staff = True
        user.save()
        client.force_login(user)
        for name in ("admin:index", "admin:audit_auditrecord_changelist"):
            response = client.get(reverse(name))
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))
