"""Single sign-on through a real OpenID Connect provider (node-oidc-provider, tests/peers/oidc)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth.models import User
from django.urls import reverse

from portal.accounts import sso as sso_module
from portal.accounts.models import Membership, SsoIdentity
from portal.accounts.roles import AUDITOR, MAILBOX_ADMIN
from portal.audit.models import AuditRecord
from tests.accounts.access import assert_no_inline_code
from tests.factories import make_user
from tests.peers.oidc import ADMINS, CLIENT_ID, ORG_X26

pytestmark = pytest.mark.django_db


def sso_sign_in(client, provider, login: str):
    """The whole round trip: NeoMesh -> the provider's sign-in page -> NeoMesh's callback."""
    response = client.get(reverse("accounts:sso_login"))
    assert response.status_code == 302, response.content[:500]
    callback = provider.sign_in(response["Location"], login)
    assert callback.startswith("http://testserver/accounts/oidc/callback/?")
    return client.get(callback)


def actions() -> list[str]:
    """The sign-in's own records (django-auditlog's row changes left out)."""
    records = AuditRecord.objects.filter(action__regex=r"^(sso|auth)\.").order_by("seq")
    return list(records.values_list("action", flat=True))


def test_it_sends_the_person_to_the_provider_with_pkce_state_and_nonce(client, sso):
    response = client.get(reverse("accounts:sso_login"), {"next": "/messages/"})
    url = urlparse(response["Location"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sso.issuer}/auth"  # from discovery
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0]
    assert query["scope"] == ["openid email profile groups"]
    assert query["redirect_uri"] == ["http://testserver/accounts/oidc/callback/"]


def test_it_signs_in_with_the_mapped_role_and_organisation(client, sso):
    response = sso_sign_in(client, sso, "ada.sso")

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:home")
    user = User.objects.get(username="ada.sso")
    assert not user.has_usable_password()
    assert (user.email, user.is_superuser, user.is_staff) == ("ada@example.nhs.uk", False, False)
    assert list(user.groups.values_list("name", flat=True)) == [MAILBOX_ADMIN]
    assert [m.organisation.ods_code for m in Membership.objects.filter(user=user)] == ["X26"]
    assert SsoIdentity.objects.get(user=user).subject == "ada.sso"
    id_token = client.session["sso_id_token"]
    payload = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    assert (payload["iss"], payload["aud"], payload["sub"]) == (sso.issuer, CLIENT_ID, "ada.sso")
    assert payload["amr"] == ["pwd", "mfa"]  # how the provider says it signed the person in
    # The provider checked a second factor: this mailbox admin is not asked for NeoMesh's own.
    assert client.session["neomesh_factor"]["method"] == "oidc"
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "ada.sso" in html and MAILBOX_ADMIN in html
    assert actions()[-5:] == [
        "sso.linked",
        "sso.roles_changed",
        "sso.reach_changed",
        "sso.signin",
        "auth.login",
    ]
    signin = AuditRecord.objects.get(action="sso.signin")
    assert (signin.actor_label, signin.actor_id) == ("ada.sso", user.pk)
    assert sso.issuer in signin.detail


def test_it_returns_to_the_page_asked_for(client, sso):
    client.get(reverse("accounts:sso_login"), {"next": "/messages/"})
    response = client.get(reverse("accounts:sso_login"), {"next": "https://evil.example/"})
    callback = sso.sign_in(response["Location"], "ada.sso")
    assert client.get(callback)["Location"] == reverse("dashboard:home")

    client.logout()
    response = client.get(reverse("accounts:sso_login"), {"next": "/messages/"})
    assert client.get(sso.sign_in(response["Location"], "ada.sso"))["Location"] == "/messages/"


def test_it_sets_roles_and_organisations_from_the_claims_at_every_sign_in(client, sso, settings):
    sso_sign_in(client, sso, "ada.sso")
    client.logout()
    settings.OIDC_ROLE_MAP = {ADMINS: AUDITOR}
    settings.OIDC_ORGANISATION_MAP = {ORG_X26: "Y27"}

    assert sso_sign_in(client, sso, "ada.sso").status_code == 302

    user = User.objects.get(username="ada.sso")
    assert list(user.groups.values_list("name", flat=True)) == [AUDITOR]
    assert [m.organisation.ods_code for m in Membership.objects.filter(user=user)] == ["Y27"]
    change = AuditRecord.objects.filter(action="sso.roles_changed").latest("seq")
    assert change.changes == {"roles": [[MAILBOX_ADMIN], [AUDITOR]]}
    reach = AuditRecord.objects.filter(action="sso.reach_changed").latest("seq")
    assert reach.changes["organisations"] == [["X26"], ["Y27"]]
    assert SsoIdentity.objects.count() == 1


def test_it_gives_every_organisation_for_a_star(client, sso, settings):
    settings.OIDC_ORGANISATION_MAP = {ORG_X26: "*"}
    sso_sign_in(client, sso, "ada.sso")
    user = User.objects.get(username="ada.sso")
    assert user.has_perm("accounts.every_organisation")
    assert not Membership.objects.filter(user=user).exists()


def test_it_refuses_a_person_no_group_maps_with_a_clear_page(client, sso):
    response = sso_sign_in(client, sso, "una.sso")

    assert response.status_code == 403
    html = response.content.decode()
    assert "You cannot sign in to NeoMesh" in html
    assert "none of your groups gives you a role in NeoMesh" in html
    assert_no_inline_code(html)
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="una.sso").exists()
    refusal = AuditRecord.objects.get(action="sso.refused")
    assert (refusal.actor_label, refusal.reason) == ("una.sso", "no_role")


def test_it_refuses_an_unknown_organisation_and_keeps_nothing(client, sso, settings):
    settings.OIDC_ORGANISATION_MAP = {ORG_X26: "Z99"}
    response = sso_sign_in(client, sso, "ada.sso")
    assert response.status_code == 403
    assert "does not know any organisation" in response.content.decode()
    assert not User.objects.filter(username="ada.sso").exists()
    assert AuditRecord.objects.get(action="sso.refused").reason == "no_organisation"


def test_it_never_joins_a_superuser_or_break_glass_account_of_the_same_name(client, sso, settings):
    make_user(None, username="ada.sso", superuser=True)
    response = sso_sign_in(client, sso, "ada.sso")
    assert response.status_code == 403
    assert "already exists" in response.content.decode()
    assert not SsoIdentity.objects.exists()

    User.objects.filter(username="ada.sso").update(is_superuser=False, is_staff=False)
    settings.BREAK_GLASS_USERNAMES = ["ada.sso"]
    assert sso_sign_in(client, sso, "ada.sso").status_code == 403
    assert not SsoIdentity.objects.exists()


def test_it_joins_an_existing_local_account_once_and_refuses_it_when_disabled(client, sso):
    local = make_user(AUDITOR, username="ada.sso")
    assert sso_sign_in(client, sso, "ada.sso").status_code == 302
    local.refresh_from_db()
    assert list(local.groups.values_list("name", flat=True)) == [MAILBOX_ADMIN]
    client.logout()

    User.objects.filter(pk=local.pk).update(is_active=False)
    response = sso_sign_in(client, sso, "ada.sso")
    assert response.status_code == 403
    assert "is disabled" in response.content.decode()
    assert AuditRecord.objects.filter(action="sso.refused", reason="disabled").exists()


def test_it_refuses_a_callback_it_did_not_start(client, sso):
    response = client.get(reverse("accounts:sso_callback"), {"code": "x", "state": "forged"})
    assert response.status_code == 400
    assert "Start again from the sign-in page" in response.content.decode()
    assert "_auth_user_id" not in client.session

    response = client.get(reverse("accounts:sso_callback"), {"error": "access_denied"})
    assert response.status_code == 400
    assert "Sign-in cancelled" in response.content.decode()


def test_it_refuses_a_code_replayed(client, sso):
    response = client.get(reverse("accounts:sso_login"))
    callback = sso.sign_in(response["Location"], "ada.sso")
    assert client.get(callback).status_code == 302
    client.logout()
    assert client.get(callback).status_code == 400


def test_it_says_plainly_when_the_provider_is_unreachable_or_misconfigured(client, sso, settings):
    from tests.sandbox import free_port

    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}"
    response = client.get(reverse("accounts:sso_login"))
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()

    # The discovery document must name the issuer configured (here another spelling of it).
    settings.OIDC_ISSUER = sso.issuer.replace("127.0.0.1", "localhost")
    response = client.get(reverse("accounts:sso_login"))
    assert response.status_code == 503
    assert "names another issuer" in response.content.decode()


def test_it_signs_out_of_the_provider_too(client, sso):
    sso_sign_in(client, sso, "ada.sso")
    id_token = client.session["sso_id_token"]

    response = client.post(reverse("accounts:logout"))

    assert "_auth_user_id" not in client.session
    url = urlparse(response["Location"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sso.issuer}/session/end"
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    # The provider accepts the hint and the return address (with no session of its own in this
    # client, it goes straight on to its confirmation step; an error page otherwise).
    answer = requests.get(response["Location"], timeout=10)
    assert answer.status_code == 200, answer.text
    assert f'action="{sso.issuer}/session/end/confirm"' in answer.text
    assert actions()[-2:] == ["sso.signout", "auth.logout"]


def test_it_signs_a_password_user_out_locally(client, sso, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:logout"))
    assert response["Location"] == reverse("accounts:login")
    assert "sso.signout" not in actions()


def test_it_offers_single_sign_on_on_the_login_page(client, sso, settings):
    html = client.get(reverse("accounts:login"), {"next": "/messages/"}).content.decode()
    assert 'href="/accounts/oidc/login/?next=/messages/"' in html
    assert "Sign in with the test provider" in html
    assert_no_inline_code(html)

    settings.OIDC_ISSUER = ""
    html = client.get(reverse("accounts:login")).content.decode()
    assert "/accounts/oidc/login/" not in html
    assert client.get(reverse("accounts:sso_login")).status_code == 404


def test_it_refuses_passwords_when_local_accounts_are_off_but_for_break_glass(client, settings):
    settings.LOCAL_ACCOUNTS_ENABLED = False
    settings.BREAK_GLASS_USERNAMES = ["root-glass"]
    make_user(MAILBOX_ADMIN, username="pat-local")
    glass = make_user(None, username="root-glass", superuser=True)
    login = reverse("accounts:login")

    assert "Break-glass sign-in" in client.get(login).content.decode()
    response = client.post(login, {"username": "pat-local", "password": "a-long-test-password"})
    assert response.status_code == 200
    assert "Password sign-in is switched off" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The same message for a break-glass name with a wrong password: nothing tells them apart.
    wrong = client.post(login, {"username": "root-glass", "password": "not-it"})
    assert "Password sign-in is switched off" in wrong.content.decode()
    # The Django admin's sign-in goes through the same backend.
    admin = client.post(
        reverse("admin:login"), {"username": "pat-local", "password": "a-long-test-password"}
    )
    assert "_auth_user_id" not in client.session and admin.status_code == 200

    response = client.post(login, {"username": "root-glass", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(glass.pk)
    record = AuditRecord.objects.get(action="auth.break_glass")
    assert (record.actor_label, record.actor_id) == ("root-glass", glass.pk)


def test_it_logs_a_break_glass_sign_in_loudly(client, settings, caplog):
    settings.LOCAL_ACCOUNTS_ENABLED = False
    settings.BREAK_GLASS_USERNAMES = ["root-glass"]
    make_user(None, username="root-glass", superuser=True)
    client.post(
        reverse("accounts:login"), {"username": "root-glass", "password": "a-long-test-password"}
    )
    assert any(
        r.levelname == "CRITICAL" and "BREAK-GLASS" in r.getMessage() for r in caplog.records
    )


# The claim mapping alone.
@pytest.fixture
def maps(settings):
    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    settings.OIDC_ROLE_CLAIM = "groups"
    settings.OIDC_ORGANISATION_CLAIM = "groups"
    settings.OIDC_ROLE_MAP = {"admins": "Mailbox admin;Auditor", "leads": "Onboarding lead"}
    settings.OIDC_ORGANISATION_MAP = {"org-a": "X26;Y27", "staff": "*"}
    settings.OIDC_ORGANISATION_CLAIM_IS_ODS_CODE = False
    return settings


def test_it_maps_groups_to_roles_and_organisations(maps):
    decision = sso_module.claims_decide(
        {"sub": "s1", "preferred_username": "kim", "groups": ["admins", "org-a", "other"]}
    )
    assert decision.username == "kim" and decision.subject == "s1"
    assert decision.roles == {"Mailbox admin", "Auditor"}
    assert decision.organisations == {"X26", "Y27"} and not decision.every_organisation
    assert sso_module.claims_decide(
        {"sub": "s1", "preferred_username": "kim", "groups": ["leads", "staff"]}
    ).every_organisation


def test_it_reads_cis2_style_role_claims_by_a_dotted_path(maps):
    maps.OIDC_USERNAME_CLAIM = "uid"
    maps.OIDC_ROLE_CLAIM = "nhsid_nrbac_roles.role_code"
    maps.OIDC_ROLE_MAP = {"S8000:G8000:R8001": "Onboarding lead"}
    maps.OIDC_ORGANISATION_CLAIM = "nhsid_nrbac_roles.org_code"
    maps.OIDC_ORGANISATION_CLAIM_IS_ODS_CODE = True
    claims = {
        "sub": "555021935107",
        "uid": "555021935107",
        "nhsid_nrbac_roles": [
            {"person_roleid": "1", "org_code": "x26", "role_code": "S8000:G8000:R8001"},
            {"person_roleid": "2", "org_code": "RYX", "role_code": "S0:G0:R0"},
        ],
    }
    decision = sso_module.claims_decide(claims)
    assert decision.username == "555021935107"
    assert decision.roles == {"Onboarding lead"}
    assert decision.organisations == {"X26", "RYX"}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "s1", "groups": ["admins", "org-a"]}, "no_username"),
        ({"preferred_username": "kim", "groups": ["admins", "org-a"]}, "no_username"),
        ({"sub": "s1", "preferred_username": "kim", "groups": ["org-a"]}, "no_role"),
        ({"sub": "s1", "preferred_username": "kim", "groups": "admins"}, "no_organisation"),
        ({"sub": "s1", "preferred_username": "kim", "groups": [{"admins": 1}, None]}, "no_role"),
    ],
)
def test_it_refuses_claims_that_map_to_nothing(maps, claims, reason):
    with pytest.raises(sso_module.SsoRefused) as refused:
        sso_module.claims_decide(claims)
    assert refused.value.reason == reason
    assert refused.value.message


def test_it_refuses_a_map_to_a_role_that_does_not_exist(maps):
    maps.OIDC_ROLE_MAP = {"admins": "Mailbox administrator"}
    with pytest.raises(sso_module.SsoRefused) as refused:
        sso_module.claims_decide({"sub": "s", "preferred_username": "k", "groups": ["admins"]})
    assert refused.value.reason == "misconfigured"
    assert "Mailbox administrator" in refused.value.message


def test_the_system_check_names_a_map_to_a_role_that_does_not_exist(maps):
    maps.OIDC_ISSUER = "https://idp.example"
    assert sso_module.check_settings() == []
    maps.OIDC_ROLE_MAP = {"admins": "Mailbox admin;Superuser"}
    [error] = sso_module.check_settings()
    assert error.id == "accounts.E001" and "'Superuser'" in error.msg
