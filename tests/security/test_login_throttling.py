"""Sign-in is throttled after repeated failures (django-axes), per username and address, and per
username alone at a higher limit (so rotating addresses does not help).

django-axes only sees sign-ins made through the login view, so these tests post to it; the other
tests sign in with force_login.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from tests.accounts.access import PERSONAS, as_persona, assert_access

pytestmark = pytest.mark.django_db

RIGHT = "a-long-test-password"


def sign_in(client, user, password: str, address: str = "127.0.0.1"):
    return client.post(
        reverse("accounts:login"),
        {"username": user.username, "password": password},
        REMOTE_ADDR=address,
    )


def fail(client, user, times: int, address: str = "127.0.0.1") -> None:
    for _ in range(times):
        response = sign_in(client, user, "not the password", address)
        assert response.status_code in (200, 429)


def signed_in(client) -> bool:
    """Past the password: the dashboard, or the second factor's page for a role that needs one."""
    response = client.get(reverse("dashboard:home"))
    if response.status_code == 302:
        return response["Location"].startswith(reverse("accounts:factor_enrol"))
    return response.status_code == 200


def test_the_limit_comes_from_the_environment_with_a_sane_default():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_USERNAME_FAILURE_LIMIT == 3 * settings.AXES_FAILURE_LIMIT


def test_it_refuses_even_the_right_password_after_repeated_failures(client, admin_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT)
    response = sign_in(client, admin_user, RIGHT)
    assert response.status_code == 429
    assert "Sign-in temporarily locked" in response.content.decode()
    assert not signed_in(client)
    # The sealed chain holds the lockout once, not every failure (those are axes' failure log).
    assert not AuditRecord.objects.filter(action="auth.login_failed").exists()
    lockout = AuditRecord.objects.get(action="auth.lockout")
    assert lockout.actor_label == admin_user.username and lockout.ip_address == "127.0.0.1"
    assert AccessFailureLog.objects.count() >= settings.AXES_FAILURE_LIMIT


def test_it_still_lets_in_below_the_limit(client, admin_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, admin_user, RIGHT).status_code == 302
    assert signed_in(client)


def test_a_success_resets_the_count(client, admin_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT - 1)
    sign_in(client, admin_user, RIGHT)
    client.post(reverse("accounts:logout"))
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, admin_user, RIGHT).status_code == 302


def test_it_locks_the_username_at_that_address_only(client, admin_user, auditor_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT, address="203.0.113.5")
    assert sign_in(client, admin_user, RIGHT, address="203.0.113.5").status_code == 429
    assert sign_in(client, auditor_user, RIGHT, address="203.0.113.5").status_code == 302
    client.post(reverse("accounts:logout"))
    assert sign_in(client, admin_user, RIGHT, address="198.51.100.1").status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, admin_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT)
    assert sign_in(client, admin_user, RIGHT).status_code == 429
    long_ago = AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME * 2
    AccessAttempt.objects.update(attempt_time=long_ago)
    assert sign_in(client, admin_user, RIGHT).status_code == 302


def fail_from_many_addresses(client, user, total: int) -> None:
    """`total` failures, spread so that no address reaches the per-address limit."""
    per_address = settings.AXES_FAILURE_LIMIT - 1
    for n in range(total):
        fail(client, user, 1, address=f"198.51.100.{n // per_address + 1}")


def test_rotating_addresses_locks_the_username_at_the_higher_limit(
    client, admin_user, auditor_user
):
    fail_from_many_addresses(client, admin_user, settings.AXES_USERNAME_FAILURE_LIMIT)
    fresh = "192.0.2.200"
    response = sign_in(client, admin_user, RIGHT, address=fresh)
    assert response.status_code == 429 and not signed_in(client)
    assert sign_in(client, auditor_user, RIGHT, address=fresh).status_code == 302


def test_below_the_username_limit_other_addresses_still_sign_in(client, admin_user):
    fail_from_many_addresses(client, admin_user, settings.AXES_USERNAME_FAILURE_LIMIT - 1)
    assert sign_in(client, admin_user, RIGHT, address="192.0.2.200").status_code == 302


def test_the_username_lock_lifts_after_the_cool_off(client, admin_user):
    fail_from_many_addresses(client, admin_user, settings.AXES_USERNAME_FAILURE_LIMIT)
    assert sign_in(client, admin_user, RIGHT, address="192.0.2.200").status_code == 429
    long_ago = AccessAttempt.objects.latest("attempt_time").attempt_time
    AccessAttempt.objects.update(attempt_time=long_ago - settings.AXES_COOLOFF_TIME * 2)
    assert sign_in(client, admin_user, RIGHT, address="192.0.2.200").status_code == 302


# Per address across usernames, a lockout once per window, and the unlock.


def test_one_address_trying_many_usernames_is_locked(client, admin_user, auditor_user, settings):
    settings.AXES_ADDRESS_FAILURE_LIMIT = 6
    spray = "203.0.113.66"
    for n in range(settings.AXES_ADDRESS_FAILURE_LIMIT):
        client.post(
            reverse("accounts:login"), {"username": f"guess{n}", "password": "x"}, REMOTE_ADDR=spray
        )
    # A username it never tried, with the right password: the address is locked.
    assert sign_in(client, auditor_user, RIGHT, address=spray).status_code == 429
    assert sign_in(client, auditor_user, RIGHT, address="198.51.100.2").status_code == 302
    locks = AuditRecord.objects.filter(action="auth.lockout")
    assert [r.detail for r in locks] == [f"Sign-in locked: address {spray}, across usernames"]


def test_a_lockout_is_recorded_once_per_window_however_many_failures_follow(
    client, admin_user, settings
):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT + 10)
    sign_in(client, admin_user, RIGHT)
    assert AuditRecord.objects.filter(action="auth.lockout").count() == 1
    assert not AuditRecord.objects.filter(action="auth.login_failed").exists()
    # A new window, a new record (the sealed records cannot be back-dated: shorten the window).
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    time.sleep(1.1)
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT)
    assert AuditRecord.objects.filter(action="auth.lockout").count() == 2


def test_the_username_lock_spares_an_address_the_person_signed_in_from(client, admin_user):
    AccessLog.objects.create(
        username=admin_user.username,
        ip_address="192.0.2.10",
        user_agent="x",
        attempt_time=timezone.now(),
    )
    fail_from_many_addresses(client, admin_user, settings.AXES_USERNAME_FAILURE_LIMIT)
    assert sign_in(client, admin_user, RIGHT, address="192.0.2.200").status_code == 429
    assert sign_in(client, admin_user, RIGHT, address="192.0.2.10").status_code == 302


def test_an_admin_unlocks_on_the_portal_audited(client, admin_user, superuser):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT)
    client.force_login(superuser)
    page = client.get(reverse("accounts:lockouts")).content.decode()
    assert admin_user.username in page and "127.0.0.1" in page
    response = client.post(
        reverse("accounts:lockout_unlock"),
        {"username": admin_user.username, "address": "127.0.0.1"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    cleared = AuditRecord.objects.get(action="auth.lockout_cleared")
    assert cleared.actor == superuser and admin_user.username in cleared.detail
    client.post(reverse("accounts:logout"))
    assert sign_in(client, admin_user, RIGHT).status_code == 302


def test_only_admins_may_see_or_lift_lockouts(client, admin_user, lead_user, auditor_user):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT)
    for user in (admin_user, lead_user, auditor_user):
        client.force_login(user)
        assert client.get(reverse("accounts:lockouts")).status_code == 403
        unlock = client.post(reverse("accounts:lockout_unlock"), {"username": admin_user.username})
        assert unlock.status_code == 403
    assert AccessAttempt.objects.exists()


def test_an_operator_unlocks_with_a_command_audited(client, admin_user, capsys):
    fail(client, admin_user, settings.AXES_FAILURE_LIMIT, address="203.0.113.5")
    call_command("unlock_sign_in", "--address", "203.0.113.5")
    assert "1 failure record(s) cleared" in capsys.readouterr().out
    assert AuditRecord.objects.get(action="auth.lockout_cleared").actor_label.startswith(
        "command line"
    )
    assert sign_in(client, admin_user, RIGHT, address="203.0.113.5").status_code == 302


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_lockouts_page_is_for_superusers_only(client, request, persona):
    as_persona(client, request, persona)
    assert_access(client.get(reverse("accounts:lockouts")), persona, {"superuser"})
    response = client.post(reverse("accounts:lockout_unlock"), {"address": "192.0.2.1"})
    assert_access(response, persona, {"superuser"}, ok_status=302)


def test_a_hostile_username_is_escaped_on_the_lockouts_page(client, superuser):
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    client.post(reverse("accounts:login"), {"username": hostile, "password": "x"})
    client.force_login(superuser)
    html = client.get(reverse("accounts:lockouts")).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
