"""Single sign-on in the browser: through a real OpenID Connect provider and back, with the role
and organisation its groups map to; out of reach is a 404; sign-out ends the provider's session; a
person no group maps is refused."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

OTHER_ORGANISATION = """
from portal.mailboxes.models import Environment, Mailbox, Organisation
org, _ = Organisation.objects.get_or_create(ods_code="Y27", defaults={"name": "Other Trust"})
mailbox, _ = Mailbox.objects.get_or_create(
    mailbox_id="Y27ABC1",
    defaults={"organisation": org, "environment": Environment.SANDBOX, "name": "Other mailbox"},
)
print(mailbox.pk)
"""


def provider_sign_in(page, login: str) -> None:
    """The provider's own sign-in page (node-oidc-provider's development one: any password)."""
    expect(page.get_by_role("heading", name="Sign-in")).to_be_visible()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()


def test_a_person_signs_in_through_the_provider_and_sees_only_their_organisation(
    stack, page, oidc_provider
):
    other_pk = int(stack.manage("shell", "-c", OTHER_ORGANISATION).stdout.split()[-1])

    page.goto(stack.url + "/mailboxes/")
    page.get_by_role("link", name="Sign in with the test provider").click()
    assert page.url.startswith(oidc_provider.issuer)
    provider_sign_in(page, "ada.sso")

    # Back at NeoMesh where the person was going, with the role the groups map to.
    expect(page).to_have_url(re.compile(re.escape(stack.url) + r"/mailboxes/$"))
    expect(page.locator(".who-name")).to_have_text("ada.sso")
    expect(page.locator(".who-role")).to_have_text("Mailbox admin")
    expect(page.get_by_role("link", name="X26ABC1").first).to_be_visible()
    expect(page.get_by_text("Y27ABC1")).to_have_count(0)
    # Another organisation's mailbox does not exist for this person.
    response = page.goto(f"{stack.url}/mailboxes/{other_pk}/edit/")
    assert response.status == 404
    # The role decides: a mailbox admin is not an auditor.
    response = page.goto(f"{stack.url}/audit/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You do not have access to this page")).to_be_visible()

    # Sign-out ends the provider's session too: the next sign-in asks who you are again.
    page.goto(stack.url + "/")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(stack.url + "/accounts/login/")

    page.get_by_role("link", name="Sign in with the test provider").click()
    provider_sign_in(page, "una.sso")
    expect(page.get_by_role("heading", name="You cannot sign in to NeoMesh")).to_be_visible()
    expect(page.get_by_text("none of your groups gives you a role in NeoMesh")).to_be_visible()
    assert page.goto(stack.url + "/mailboxes/").url.startswith(stack.url + "/accounts/login/")
