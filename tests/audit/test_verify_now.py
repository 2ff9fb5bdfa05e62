"""Auditors run the chain verification from the audit pages, which show its last result and age."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit import tasks
from portal.audit.enqueue import VERIFY_TASK
from portal.audit.models import AuditRecord, Verification

pytestmark = pytest.mark.django_db


def test_an_auditor_runs_the_verification_and_the_pages_show_its_result(
    client, auditor_user, task_queue
):
    client.force_login(auditor_user)
    trail = client.get(reverse("audit:trail")).content.decode()
    assert "has not been verified yet" in trail and "Verify the chain now" in trail
    response = client.post(reverse("audit:verify"))
    assert response.status_code == 302 and response["Location"] == reverse("audit:trail")
    assert task_queue.queue_size() == 1
    asked = AuditRecord.objects.get(action="audit.verification_requested")
    assert (asked.actor, asked.actor_kind) == (auditor_user, "person")
    assert "Running" in client.get(reverse("audit:trail")).content.decode()
    tasks.verify_chain()  # what the worker runs (VERIFY_TASK)
    assert VERIFY_TASK == "portal.audit.tasks.verify_chain"
    for url in (reverse("audit:trail"), reverse("audit:detail", args=[asked.seq])):
        page = client.get(url).content.decode()
        assert "Intact" in page and "The audit trail was verified" in page
        assert "just now" in page and "Running" not in page
    assert Verification.objects.get().ok


def test_a_broken_result_is_shown_with_its_first_broken_record(client, auditor_user):
    Verification.objects.create(
        ok=False, records_checked=7, first_broken_seq=5, detail="record #5 was altered"
    )
    client.force_login(auditor_user)
    page = client.get(reverse("audit:trail")).content.decode()
    assert "Broken" in page and "first broken at record #5" in page
    assert "record #5 was altered" in page


def test_only_those_who_may_verify_see_the_button_and_can_post(
    client, admin_user, lead_user, auditor_user
):
    client.force_login(admin_user)  # mailbox admins read no trail
    assert client.post(reverse("audit:verify")).status_code == 403
    client.force_login(lead_user)
    assert client.post(reverse("audit:verify")).status_code == 403
    client.force_login(auditor_user)
    assert client.get(reverse("audit:verify")).status_code == 405
