"""The daily chain verification: scheduled in the one place schedules come from, and recorded."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils.module_loading import import_string
from django_q.models import Schedule

from portal.audit import tasks
from portal.audit.models import Verification
from portal.audit.services import Actor, record
from portal.lib.schedules import ensure_schedules

pytestmark = pytest.mark.django_db


def test_the_daily_verification_is_scheduled_after_migrate():
    schedule = Schedule.objects.get(func="portal.audit.tasks.verify_chain")
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.DAILY, -1)
    assert import_string(schedule.func) is tasks.verify_chain


def test_setting_up_schedules_again_keeps_one_verification():
    ensure_schedules()
    ensure_schedules()
    assert Schedule.objects.filter(func="portal.audit.tasks.verify_chain").count() == 1


def test_the_task_records_a_verification_the_dashboard_shows():
    entry = record(action="test.event", actor=Actor(kind="system", label="tester"))
    assert tasks.verify_chain() == "audit chain intact"
    result = Verification.objects.latest("pk")
    assert result.ok and result.records_checked >= 1 and result.last_seq == entry.seq


def test_the_task_records_a_broken_chain():
    entry = record(action="test.event", actor=Actor(kind="system", label="tester"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET detail = 'x' WHERE seq = %s", [entry.seq])
    outcome = tasks.verify_chain()
    assert outcome.startswith("audit chain broken") and f"#{entry.seq}" in outcome
    result = Verification.objects.latest("pk")
    assert (result.ok, result.first_broken_seq) == (False, entry.seq)
