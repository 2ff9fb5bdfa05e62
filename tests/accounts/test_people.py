"""People management: the list, invitations, roles, disable and enable, factor reset; all audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse

from portal.accounts import factors
from portal.accounts.roles import AUDITOR, MAILBOX_ADMIN, ONBOARDING_LEAD
from portal.audit.models import AuditRecord
from tests.accounts.access import PERSONAS, as_persona, assert_access, assert_no_inline_code
from tests.factories import make_user
from tests.factors import enrolled

pytestmark = pytest.mark.django_db


def actions_for(user) -> list[str]:
    return list(
        AuditRecord.objects.filter(object_type="auth.user", object_id=str(user.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_people_pages_are_for_superusers_only(client, request, persona, lead_user):
    as_persona(client, request, persona)
    person = reverse("accounts:person", args=[lead_user.pk])
    assert_access(client.get(reverse("accounts:people")), persona, {"superuser"})
    assert_access(client.get(person), persona, {"superuser"})
    assert_access(client.get(reverse("accounts:person_invite")), persona, {"superuser"})
    for name in ("person_roles", "person_reach", "person_active", "person_factor_reset"):
        url = reverse(f"accounts:{name}", args=[lead_user.pk])
        assert_access(client.post(url, {"reason": "x"}), persona, {"superuser"}, ok_status=302)


def test_it_lists_people_with_roles_factor_and_last_sign_in(
    client, superuser, admin_user, lead_user, django_assert_max_num_queries
):
    enrolled(admin_user)
    for n in range(5):
        make_user(AUDITOR, username=f"auditor{n}")
    client.force_login(superuser)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("accounts:people"))
    html = response.content.decode()
    rows = {p.username: p for p in response.context["people"]}
    assert rows["alice-admin"].has_factor and not rows["olu-lead"].factor_needed
    assert rows["sam-super"].factor_needed and "Mailbox admin" in html and "Never" in html
    assert_no_inline_code(html)


def test_an_invitation_shows_a_one_time_link_when_email_is_off(client, superuser, settings):
    settings.PEOPLE_INVITE_EMAIL = False
    client.force_login(superuser)
    page = client.post(
        reverse("accounts:person_invite"),
        {"username": "nia-new", "email": "nia@example.nhs.uk", "roles": [MAILBOX_ADMIN]},
    )
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    person = User.objects.get(username="nia-new")
    assert not person.has_usable_password() and person.groups.get().name == MAILBOX_ADMIN
    assert actions_for(person)[-1:] == ["person.invited"] and not mail.outbox
    link = page.context["url"]
    client.logout()
    form = client.get(link, follow=True)
    assert "Set your password" in form.content.decode()
    password = "a-brand-new-long-passphrase"
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}
    )
    assert done.status_code == 302 and done["Location"] == reverse("accounts:login")
    person.refresh_from_db()
    assert person.check_password(password) and "person.password_set" in actions_for(person)
    # The link worked once.
    assert "does not work any more" in client.get(link, follow=True).content.decode()
    # Their first sign-in asks for a factor (their role needs one).
    client.post(reverse("accounts:login"), {"username": "nia-new", "password": password})
    assert client.get("/")["Location"].startswith(reverse("accounts:factor_enrol"))


def test_an_invitation_goes_by_email_when_email_is_on(client, superuser, settings):
    settings.PEOPLE_INVITE_EMAIL = True
    client.force_login(superuser)
    response = client.post(
        reverse("accounts:person_invite"),
        {"username": "ed-email", "email": "ed@example.nhs.uk", "roles": [ONBOARDING_LEAD]},
    )
    person = User.objects.get(username="ed-email")
    assert response["Location"] == reverse("accounts:person", args=[person.pk])
    assert (
        mail.outbox[0].to == ["ed@example.nhs.uk"] and "/accounts/welcome/" in mail.outbox[0].body
    )


def test_an_invitation_refuses_a_taken_username(client, superuser, admin_user):
    client.force_login(superuser)
    response = client.post(reverse("accounts:person_invite"), {"username": "ALICE-admin"})
    assert response.status_code == 400 and "already has this username" in response.content.decode()


def test_roles_disable_enable_and_factor_reset_are_audited(client, superuser, admin_user):
    enrolled(admin_user)
    client.force_login(superuser)
    url = lambda name: reverse(f"accounts:{name}", args=[admin_user.pk])  # noqa: E731
    client.post(url("person_roles"), {"roles": [AUDITOR]})
    assert list(admin_user.groups.values_list("name", flat=True)) == [AUDITOR]
    assert client.post(url("person_active"), {"active": "0"})["Location"] == url("person")
    admin_user.refresh_from_db()
    assert admin_user.is_active  # no reason given
    client.post(url("person_active"), {"active": "0", "reason": "Left the trust"})
    admin_user.refresh_from_db()
    assert not admin_user.is_active
    client.post(url("person_active"), {"active": "1"})
    client.post(url("person_factor_reset"), {"reason": "Lost phone, checked by phone call"})
    assert factors.authenticator_for(admin_user) is None
    assert factors.recovery_codes_left(admin_user) == 0
    actions = actions_for(admin_user)
    for action in (
        "person.roles_changed",
        "person.disabled",
        "person.enabled",
        "auth.factor_reset",
    ):
        assert action in actions
    reset = AuditRecord.objects.get(action="auth.factor_reset")
    assert reset.reason == "Lost phone, checked by phone call" and reset.actor == superuser


def test_a_disabled_person_is_signed_out_at_their_next_click(client, superuser, auditor_user):
    client.force_login(auditor_user)
    assert client.get(reverse("audit:trail")).status_code == 200
    from portal.accounts.people import person_active_set
    from portal.audit.services import Actor

    person_active_set(
        user=auditor_user, active=False, actor=Actor.person(user=superuser), reason="x"
    )
    assert client.get(reverse("audit:trail"))["Location"].startswith(reverse("accounts:login"))


def test_an_admin_cannot_disable_themself(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("accounts:person_active", args=[superuser.pk]),
        {"active": "0", "reason": "oops"},
        follow=True,
    )
    assert "cannot disable your own account" in response.content.decode()
    superuser.refresh_from_db()
    assert superuser.is_active


def test_reach_is_set_exactly_and_audited(client, superuser):
    from portal.accounts import reach
    from tests.factories import make_mailbox, make_organisation

    north = make_organisation(name="North Trust", ods_code="RN1")
    south = make_organisation(name="South Trust", ods_code="RS1")
    n1 = make_mailbox("RN1ABC1", organisation=north)
    s1, s2 = (make_mailbox(m, organisation=south) for m in ("RS1ABC1", "RS1ABC2"))
    person = make_user(MAILBOX_ADMIN, username="pat", organisations=[])
    assert not reach.mailboxes_for(person).exists()
    client.force_login(superuser)
    url = reverse("accounts:person_reach", args=[person.pk])
    client.post(url, {"organisations": [north.pk], "mailboxes": [s2.pk, n1.pk]})
    person = User.objects.get(pk=person.pk)
    assert set(reach.mailboxes_for(person)) == {n1, s2}
    change = AuditRecord.objects.filter(action="person.reach_changed").last()
    assert change.changes["reach"] == [
        "nothing",
        "North Trust (RN1); South Trust (RS1): only RS1ABC2",
    ]
    page = client.get(reverse("accounts:person", args=[person.pk])).content.decode()
    assert "North Trust (RN1); South Trust (RS1): only RS1ABC2" in page
    assert (
        "South Trust (RS1): only RS1ABC2" in client.get(reverse("accounts:people")).content.decode()
    )
    client.post(url, {"every_organisation": "on"})
    person = User.objects.get(pk=person.pk)
    assert reach.sees_everything(person) and not person.memberships.exists()
    assert set(reach.mailboxes_for(person)) == {n1, s1, s2}


def test_task_owners_are_people_with_a_part_in_the_plan_within_its_reach(
    admin_user, lead_user, auditor_user
):
    from portal.onboarding.forms import task_owners
    from tests.factories import make_organisation
    from tests.onboarding.helpers import make_plan

    plan = make_plan()
    elsewhere = make_organisation(name="Elsewhere", ods_code="RZ9")
    member = make_user(MAILBOX_ADMIN, username="mo-member", organisations=[plan.organisation])
    stranger = make_user(MAILBOX_ADMIN, username="sid-stranger", organisations=[elsewhere])
    owners = set(task_owners(organisation=plan.organisation))
    # A mailbox admin can own "generate the production CSR"; an auditor owns nothing.
    assert {admin_user, lead_user, member} <= owners
    assert auditor_user not in owners and stranger not in owners
