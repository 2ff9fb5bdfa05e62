"""What a superuser can remove in the Django admin leaves a record: the recurring jobs (the daily
chain verification among them) and sign-in lockouts; the sign-in logs cannot be removed at all."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessLog
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from portal.audit.models import AuditRecord
from portal.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def daily_verification() -> Schedule:
    return Schedule.objects.get(func="portal.audit.tasks.verify_chain")


def attempt(username: str = "alice-admin", ip: str = "203.0.113.5") -> AccessAttempt:
    return AccessAttempt.objects.create(
        username=username,
        ip_address=ip,
        user_agent="test",
        failures_since_start=5,
        attempt_time=timezone.now(),
        get_data="",
        post_data="",
        http_accept="",
        path_info="/",
    )


def test_deleting_the_daily_verification_schedule_in_the_admin_is_audited(client, superuser):
    schedule = daily_verification()
    client.force_login(superuser)
    url = reverse("admin:django_q_schedule_delete", args=[schedule.pk])
    assert client.post(url, {"post": "yes"}, REMOTE_ADDR="192.0.2.9").status_code == 302
    assert not Schedule.objects.filter(pk=schedule.pk).exists()
    entry = AuditRecord.objects.for_object(schedule).get(action="schedule.delete")
    assert (entry.actor, entry.ip_address) == (superuser, "192.0.2.9")
    assert "portal.audit.tasks.verify_chain" in str(entry.changes)
    assert verify_chain().ok


def test_changing_a_schedule_is_audited_but_the_clusters_bookkeeping_is_not():
    schedule = daily_verification()
    schedule.next_run = timezone.now()
    schedule.task = "a-task-id"
    schedule.save()
    assert not AuditRecord.objects.for_object(schedule).filter(action="schedule.update").exists()
    schedule.schedule_type = Schedule.WEEKLY
    schedule.save()
    entry = AuditRecord.objects.for_object(schedule).get(action="schedule.update")
    assert entry.changes["schedule_type"] == ["D", "W"]


def test_lifting_a_lockout_in_the_admin_is_audited(client, superuser):
    locked = attempt()
    client.force_login(superuser)
    url = reverse("admin:axes_accessattempt_delete", args=[locked.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not AccessAttempt.objects.exists()
    entry = AuditRecord.objects.get(action="auth.lockout_cleared")
    assert entry.actor == superuser and "'alice-admin' from 203.0.113.5" in entry.detail
    assert (entry.object_type, entry.object_id) == ("axes.accessattempt", str(locked.pk))


def test_lifting_lockouts_in_bulk_audits_each(client, superuser):
    first, second = attempt(), attempt("olu-lead", "198.51.100.1")
    client.force_login(superuser)
    client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    cleared = AuditRecord.objects.filter(action="auth.lockout_cleared")
    assert set(cleared.values_list("object_id", flat=True)) == {str(first.pk), str(second.pk)}


def test_the_sign_in_logs_are_read_only_in_the_admin(client, superuser):
    log = AccessLog.objects.create(
        username="alice-admin",
        ip_address="203.0.113.5",
        user_agent="test",
        http_accept="",
        path_info="/",
        attempt_time=timezone.now(),
    )
    client.force_login(superuser)
    assert client.get(reverse("admin:axes_accesslog_change", args=[log.pk])).status_code == 200
    delete = reverse("admin:axes_accesslog_delete", args=[log.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:axes_accesslog_changelist")).content.decode()
    assert "delete_selected" not in changelist
    assert AccessLog.objects.filter(pk=log.pk).exists()
