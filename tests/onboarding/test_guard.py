"""The "no secrets in notes" guard is no password oracle: one refusal, limited, audited.

Before: the refusal named which mailbox's password or shared key a note held, for any onboarding
lead, as often as they liked, and a note could hold thousands of guesses.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.onboarding import correspondence as letters
from portal.onboarding.guard import LOCKED, REFUSAL, REFUSED
from portal.onboarding.models import Correspondence

from .helpers import make_plan, task

pytestmark = pytest.mark.django_db
PASSWORD, SHARED_KEY = "live-Pa55word-9f2k", "live-Shared-K3y-77"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"


@pytest.fixture
def plan(settings):
    cache.clear()
    settings.SECRET_GUARD_REFUSALS, settings.SECRET_GUARD_CHECKS = 3, 60
    plan = make_plan()
    mailbox = plan.target_mailbox
    mailbox.password, mailbox.shared_key = PASSWORD, SHARED_KEY
    mailbox.save()
    return plan


def save_notes(client, plan, notes: str, key: str = "review-submission"):
    item = task(plan, key)
    response = client.post(
        reverse("onboarding:task_update", args=[plan.pk, item.pk]),
        {"status": item.status, "notes": notes},
    )
    item.refresh_from_db()
    return response, item


def refusal_of(response) -> str:
    assert response.status_code == 400, response.status_code
    return " ".join(response.context["form"].errors["notes"])


def test_it_gives_one_refusal_that_names_nothing(client, lead_user, plan):
    client.force_login(lead_user)
    answers = set()
    for note in (f"pw {PASSWORD}", f"key {SHARED_KEY}", KEY_PEM):
        response, item = save_notes(client, plan, note)
        answers.add(refusal_of(response))
        assert item.notes == ""
        html = response.content.decode()
        assert "X26LIVE1" not in html.split("<main", 1)[1].split("<form", 1)[0]
    assert answers == {REFUSAL}
    assert "password of" not in REFUSAL and "shared key of" not in REFUSAL


def test_it_audits_each_refusal_without_the_text(client, lead_user, plan):
    client.force_login(lead_user)
    save_notes(client, plan, f"pw {PASSWORD}")
    refused = AuditRecord.objects.get(action=REFUSED)
    assert refused.actor == lead_user and refused.detail.startswith("refused the notes of task")
    sealed = str(refused.sealed_content())
    assert PASSWORD not in sealed and "X26LIVE1" not in sealed


def test_after_the_refusal_limit_every_text_is_refused_alike_and_locked_once(
    client, lead_user, superuser, plan
):
    client.force_login(lead_user)
    for guess in ("a-Guess-1", "b-Guess-2", PASSWORD):
        save_notes(client, plan, f"{guess} {PASSWORD}")
    # Locked: a note with no secret at all gets the very same answer, so guesses learn nothing.
    for _ in range(3):
        response, item = save_notes(client, plan, "Spoke to the service desk, no secret here")
        assert refusal_of(response) == REFUSAL and item.notes == ""
    assert AuditRecord.objects.filter(action=REFUSED).count() == 3
    assert AuditRecord.objects.filter(action=LOCKED, actor=lead_user).count() == 1
    # Per person: someone else is not locked.
    client.force_login(superuser)
    response, item = save_notes(client, plan, "Spoke to the service desk")
    assert response.status_code == 302 and item.notes == "Spoke to the service desk"


def test_after_the_check_limit_every_text_is_refused(client, lead_user, plan, settings):
    settings.SECRET_GUARD_CHECKS = 4
    client.force_login(lead_user)
    for n in range(4):
        response, _ = save_notes(client, plan, f"candidates {n}: aaaa-1111 bbbb-2222")
        assert response.status_code == 302
    response, _ = save_notes(client, plan, "candidates 5")
    assert refusal_of(response) == REFUSAL
    assert AuditRecord.objects.filter(action=LOCKED).count() == 1


def test_the_lock_ends_with_its_window(client, lead_user, plan, settings):
    client.force_login(lead_user)
    for _ in range(3):
        save_notes(client, plan, f"x {PASSWORD}")
    assert save_notes(client, plan, "fine")[0].status_code == 400
    settings.SECRET_GUARD_WINDOW_MINUTES = 0  # the window has passed
    cache.clear()
    assert save_notes(client, plan, "fine")[0].status_code == 302


def test_an_unchanged_note_is_not_checked_again(client, lead_user, plan, settings):
    settings.SECRET_GUARD_CHECKS = 1
    client.force_login(lead_user)
    assert save_notes(client, plan, "first")[0].status_code == 302
    for _ in range(3):
        assert save_notes(client, plan, "first")[0].status_code == 302


def test_a_draft_email_gets_the_same_refusal(client, lead_user, plan):
    letter = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    client.force_login(lead_user)
    url = reverse("onboarding:letter_edit", args=[plan.pk, letter.pk])
    response = client.post(
        url,
        {
            "to_addresses": "",
            "cc_addresses": "",
            "subject": "S",
            "body": f"Our password is {PASSWORD}",
        },
    )
    assert response.status_code == 400
    assert REFUSAL in " ".join(response.context["form"].errors["body"])
    assert Correspondence.objects.get(pk=letter.pk).body != f"Our password is {PASSWORD}"
