"""The second factor: enrolment, verification, recovery codes, lockout, step-up, the OIDC hook."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken

from portal.accounts import factors
from portal.accounts.models import AuthenticatorDevice
from portal.audit.models import AuditRecord
from portal.mailboxes.models import Environment
from tests.accounts.access import assert_no_inline_code, make_message
from tests.factories import make_mailbox
from tests.factors import enrolled, prove_factor, totp_code
from tests.mailboxes.test_views import mailbox_data
from tests.onboarding.helpers import make_plan

pytestmark = [pytest.mark.django_db, pytest.mark.factor_unproven]

PASSWORD = "a-long-test-password"
VERIFY = reverse("accounts:factor_verify")
ENROL = reverse("accounts:factor_enrol")


@pytest.fixture(autouse=True)
def _no_throttle_delay(settings):
    # django-otp's growing delay after a wrong code would refuse the right one a test sends next;
    # the delay is django-otp's own (tested there), the sign-in lockout below is ours.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def sign_in(client, user):
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return response


def actions_since(seq) -> list[str]:
    return list(AuditRecord.objects.filter(seq__gt=seq).values_list("action", flat=True))


def last_seq() -> int:
    return AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_it_decides_who_needs_a_second_factor(
    admin_user, lead_user, auditor_user, superuser, settings
):
    assert factors.factor_required(admin_user) and factors.factor_required(superuser)
    assert not factors.factor_required(lead_user) and not factors.factor_required(auditor_user)
    # Anyone given one of the permissions directly needs one too.
    from django.contrib.auth.models import Permission

    auditor_user.user_permissions.add(Permission.objects.get(codename="download_payload"))
    assert factors.factor_required(type(auditor_user).objects.get(pk=auditor_user.pk))
    settings.MFA_REQUIRED = False
    assert not factors.factor_required(superuser)


def test_it_shows_no_page_but_enrolment_until_the_factor_is_set_up(client, admin_user, lead_user):
    sign_in(client, admin_user)
    for url in (reverse("dashboard:home"), reverse("mailboxes:list"), reverse("api_tokens:list")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(ENROL), url
    assert f"next={url.replace('/', '%2F')}" in response["Location"]
    # Roles that need no factor go straight on.
    client.logout()
    sign_in(client, lead_user)
    assert client.get(reverse("dashboard:home")).status_code == 200


def test_it_enrols_an_authenticator_and_shows_the_recovery_codes_once(client, admin_user):
    sign_in(client, admin_user)
    seq = last_seq()
    page = client.get(ENROL + "?next=/mailboxes/")
    html = page.content.decode()
    assert page.status_code == 200 and 'src="data:image/svg+xml;base64,' in html
    assert_no_inline_code(html)
    device = AuthenticatorDevice.objects.get(user=admin_user, confirmed=False)
    assert device.secret_text() in html
    # The key is encrypted at rest: the column never holds it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM accounts_authenticatordevice WHERE id = %s", [device.pk])
        stored = cursor.fetchone()[0]
    assert device.key not in stored and stored.startswith("gAAAA")
    wrong = client.post(ENROL, {"code": "000000" if totp_code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and "did not match" in wrong.content.decode()
    done = client.post(ENROL, {"code": totp_code(device), "next": "/mailboxes/"})
    assert done.status_code == 200 and done["Cache-Control"].startswith("max-age=0")
    codes = [code for code in done.context["codes"]]
    assert len(codes) == 10 and len(set(codes)) == 10
    html = done.content.decode()
    assert all(code in html for code in codes) and 'href="/mailboxes/"' in html
    # Stored hashed: no code is in the database as itself.
    stored = set(
        StaticToken.objects.filter(device__user=admin_user).values_list("token", flat=True)
    )
    assert (
        len(stored) == 10
        and not stored & {c.replace("-", "") for c in codes}
        and not stored & set(codes)
    )
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("dashboard:home")).status_code == 200
    assert {"auth.factor_enrolled", "auth.recovery_codes_created"} <= set(actions_since(seq))
    # Enrolled: the enrolment page sends to verification instead of making a second device.
    assert client.get(ENROL)["Location"].startswith(VERIFY)


def test_it_verifies_a_code_at_sign_in_and_refuses_it_a_second_time(client, admin_user):
    device, _ = enrolled(admin_user)
    sign_in(client, admin_user)
    target = client.get(reverse("mailboxes:list"))["Location"]
    assert target.startswith(VERIFY)
    code = totp_code(device)
    response = client.post(target, {"code": code})
    assert response.status_code == 302 and response["Location"] == reverse("mailboxes:list")
    assert client.get(reverse("mailboxes:list")).status_code == 200
    # The same code, replayed in another session, is refused (and counts as a failure).
    client.logout()
    sign_in(client, admin_user)
    replay = client.post(VERIFY, {"code": code})
    assert replay.status_code == 400
    assert client.get(reverse("mailboxes:list")).status_code == 302


def test_a_recovery_code_works_once(client, admin_user):
    _, codes = enrolled(admin_user)
    sign_in(client, admin_user)
    seq = last_seq()
    assert client.post(VERIFY, {"code": codes[3].upper()})["Location"] == reverse("dashboard:home")
    assert "auth.recovery_code_used" in actions_since(seq)
    assert factors.recovery_codes_left(admin_user) == 9
    client.logout()
    sign_in(client, admin_user)
    assert client.post(VERIFY, {"code": codes[3]}).status_code == 400


def test_an_unsafe_next_goes_to_the_dashboard(client, admin_user):
    device, _ = enrolled(admin_user)
    sign_in(client, admin_user)
    response = client.post(VERIFY, {"code": totp_code(device), "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard:home")


def test_guessing_codes_locks_the_sign_in_like_wrong_passwords(client, admin_user):
    device, _ = enrolled(admin_user)
    sign_in(client, admin_user)
    seq = last_seq()
    right = totp_code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(VERIFY, {"code": wrong}).status_code == 400
    locked = client.post(VERIFY, {"code": wrong})
    assert locked.status_code == 429 and "temporarily locked" in locked.content.decode()
    # The session is over, and the password no longer works either; the lock is audited once.
    assert client.get(reverse("dashboard:home"))["Location"].startswith(reverse("accounts:login"))
    refused = client.post(
        reverse("accounts:login"), {"username": admin_user.username, "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert actions_since(seq).count("auth.lockout") == 1
    # The code itself is never in axes' records.
    from axes.models import AccessAttempt

    assert wrong not in "".join(AccessAttempt.objects.values_list("post_data", flat=True))


@pytest.fixture
def dangerous(admin_user):
    """The four step-up actions: (name, method, url, data)."""
    plan = make_plan()
    live = make_mailbox("X26LIV9", environment=Environment.LIVE)
    message = make_message(make_mailbox("X26ABC1"))
    change = mailbox_data(mailbox_id="X26LIV9", environment="live", new_shared_key="")
    return [
        (
            "override the gate",
            "get",
            reverse("onboarding:gate_override", args=[plan.target_mailbox.pk]),
            {},
        ),
        ("download a payload", "get", reverse("messaging:download", args=[message.pk]), {}),
        ("create an API token", "get", reverse("api_tokens:new"), {}),
        ("change live credentials", "post", reverse("mailboxes:edit", args=[live.pk]), change),
    ]


def test_the_dangerous_actions_need_a_fresh_factor(client, admin_user, dangerous):
    device, _ = enrolled(admin_user)
    client.force_login(admin_user)
    stale = time.time() - settings.STEP_UP_MINUTES * 60 - 5
    for name, method, url, data in dangerous:
        prove_factor(client, admin_user, at=stale)
        # Signed in and verified, but not recently: every other page still opens.
        assert client.get(reverse("mailboxes:list")).status_code == 200
        response = getattr(client, method)(
            url, data, headers={"Referer": f"http://testserver{url}"}
        )
        assert response.status_code == 302, name
        assert response["Location"].startswith(VERIFY) and "step_up=1" in response["Location"], name
        prove_factor(client, admin_user, at=time.time() - 30)
        response = getattr(client, method)(url, data)
        assert response.status_code in (200, 302) and not response.get("Location", "").startswith(
            VERIFY
        ), name
        if response.streaming:
            b"".join(response.streaming_content)


def test_a_step_up_comes_back_to_the_page_and_is_audited(client, admin_user):
    device, _ = enrolled(admin_user)
    client.force_login(admin_user)
    prove_factor(client, admin_user, at=time.time() - 3600)
    target = client.get(reverse("api_tokens:new"))["Location"]
    seq = last_seq()
    page = client.get(target)
    assert "Confirm it is you" in page.content.decode()
    back = client.post(
        target, {"code": totp_code(device), "step_up": "1", "next": reverse("api_tokens:new")}
    )
    assert back["Location"] == reverse("api_tokens:new")
    assert client.get(reverse("api_tokens:new")).status_code == 200
    assert "auth.step_up" in actions_since(seq)


def test_changing_a_live_mailbox_without_its_connection_needs_no_step_up(client, admin_user):
    live = make_mailbox("X26LIV9", environment=Environment.LIVE)
    client.force_login(admin_user)
    prove_factor(client, admin_user, at=time.time() - 3600)
    same = mailbox_data(
        mailbox_id="X26LIV9", environment="live", name="Renamed", new_password="", new_shared_key=""
    )
    assert client.post(reverse("mailboxes:edit", args=[live.pk]), same)["Location"] == reverse(
        "mailboxes:detail", args=[live.pk]
    )


def test_an_oidc_sign_in_with_a_provider_factor_passes(client, admin_user, rf):
    assert factors.oidc_asserted_mfa({"amr": ["pwd", "mfa"]})
    assert factors.oidc_asserted_mfa({"amr": "otp"})
    assert not factors.oidc_asserted_mfa({"amr": ["pwd"]}) and not factors.oidc_asserted_mfa({})
    client.force_login(admin_user)
    assert client.get(reverse("dashboard:home")).status_code == 302
    prove_factor(client, admin_user, method=factors.METHOD_OIDC)
    assert client.get(reverse("dashboard:home")).status_code == 200


def test_a_new_sign_in_forgets_an_earlier_factor(client, admin_user, auditor_user):
    enrolled(admin_user)
    client.force_login(admin_user)
    prove_factor(client, admin_user)
    # Another person signing in on the same browser does not inherit it, nor does a new sign-in.
    client.force_login(auditor_user)
    assert factors.SESSION_KEY not in client.session
    client.force_login(admin_user)
    assert client.get(reverse("dashboard:home"))["Location"].startswith(VERIFY)


def test_the_own_factor_page_makes_new_recovery_codes_after_a_step_up(client, admin_user):
    _, old = enrolled(admin_user)
    client.force_login(admin_user)
    prove_factor(client, admin_user)
    assert "Recovery codes left" in client.get(reverse("accounts:factor_home")).content.decode()
    new = client.post(reverse("accounts:recovery_codes_new")).context["codes"]
    assert set(new).isdisjoint(old) and factors.recovery_codes_left(admin_user) == 10
    client.logout()
    sign_in(client, admin_user)
    assert client.post(VERIFY, {"code": old[0]}).status_code == 400
    assert client.post(VERIFY, {"code": new[0]}).status_code == 302
