"""axe-core on every page, for each of the four demo roles: no serious or critical violation.

One browser, one context per role, one page reused for every URL. axe-core comes with the
axe-playwright-python package (nothing is downloaded when the tests run). A page a role may not
open is its 403 page, checked once. Every named GET page of the portal is either visited here or
listed in `NOT_PAGES` with the reason, so a new page cannot miss the sweep.
"""

from __future__ import annotations

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from .conftest import sign_in

pytestmark = pytest.mark.browser

ROLES = ("admin", "mailbox-admin", "onboarding-lead", "auditor")
SERIOUS = ("serious", "critical")

# Objects for the detail pages, made in the stack's own database, and every page's URL.
SEED_AND_LIST_PAGES = """
import io, json
from django.urls import reverse
from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.certificates.services import certificate_create_csr
from django.utils import timezone
from portal.conformance.models import ConformanceRun, Outcome, RunStatus
from portal.conformance.services import run_create
from portal.integrations.models import Destination, Route, RouteDestination
from portal.mailboxes.models import Mailbox
from portal.messaging.models import Message, Status
from portal.messaging.services import message_queue_send
from portal.onboarding.correspondence import correspondence_draft
from portal.onboarding.models import Plan

me = Actor.command()
plan = Plan.objects.get()
live, sender = plan.target_mailbox, Mailbox.objects.get(mailbox_id="X26ABC1")
peer = Mailbox.objects.get(mailbox_id="X26ABC2")
csr = certificate_create_csr(mailbox=live, actor=me)
letter = correspondence_draft(plan=plan, kind="nsd_change_query", actor=me)
failed = message_queue_send(
    mailbox=sender, recipient="X26ABC2", workflow_id="TEST_WORKFLOW", source=io.BytesIO(b"a,b"),
    size=3, filename="results.csv", subject="Axe", actor=me,
)
Message.objects.filter(pk=failed.pk).update(status=Status.FAILED, failure_reason="Refused (test)")
run = run_create(mailbox=sender, peer=peer, enqueue=False)
# Finished, so its page does not refresh itself while axe reads it.
run.results.update(outcome=Outcome.PASSED, reason="Fine.", duration_ms=12)
ConformanceRun.objects.filter(pk=run.pk).update(
    status=RunStatus.PASSED, summary="passed", finished_at=timezone.now()
)
task = plan.tasks.get(key="production-csr")
destination = Destination.objects.create(
    name="Results folder", kind="directory", settings={"path": "/tmp/neomesh-axe-results"}
)
route = Route.objects.create(name="Results", mailbox=peer, workflow_pattern="*")
RouteDestination.objects.create(route=route, destination=destination, position=0)
from django.contrib.auth import get_user_model
from portal.accounts.people import invite_path
invitee, _ = get_user_model().objects.get_or_create(username="axe.invitee")
invitee.set_unusable_password()
invitee.save()
pages = {
    "dashboard:home": [],
    "mailboxes:list": [],
    "mailboxes:detail": [live.pk],
    "mailboxes:create": [],
    "mailboxes:edit": [sender.pk],
    "mailboxes:organisations": [],
    "mailboxes:organisation_create": [],
    "messaging:list": [],
    "messaging:send": [],
    "messaging:send_bulk": [],
    "messaging:lookup": [],
    "messaging:detail": [failed.pk],
    "messaging:fix": [failed.pk],
    "certificates:list": [],
    "certificates:create_csr": [live.pk],
    "certificates:detail": [csr.pk],
    "onboarding:list": [],
    "onboarding:create": [],
    "onboarding:my_tasks": [],
    "onboarding:detail": [plan.pk],
    "onboarding:edit": [plan.pk],
    "onboarding:report": [plan.pk],
    "onboarding:task": [plan.pk, task.pk],
    "onboarding:decision": [plan.pk, plan.decisions.get().pk],
    "onboarding:letter": [plan.pk, letter.pk],
    "onboarding:allow_list": [plan.pk],
    "onboarding:gate": [live.pk],
    "onboarding:gate_override": [live.pk],
    "conformance:list": [],
    "conformance:new": [],
    "conformance:detail": [run.pk],
    "conformance:report": [run.pk],
    "audit:trail": [],
    "audit:detail": [AuditRecord.objects.order_by("-seq").first().seq],
    "alerts:inbox": [],
    "integrations:list": [],
    "integrations:destination_new": [],
    "integrations:destination_edit": [destination.pk],
    "integrations:route_new": [],
    "integrations:route_edit": [route.pk],
    "api_tokens:list": [],
    "api_tokens:new": [],
    "accounts:lockouts": [],
    "accounts:people": [],
    "accounts:person_invite": [],
    "accounts:person": [invitee.pk],
    "accounts:factor_home": [],
    "accounts:factor_enrol": [],
    "accounts:factor_verify": [],
}
urls = {name: reverse(name, args=args) for name, args in pages.items()}
urls["accounts:password_set"] = invite_path(invitee)
print(json.dumps(urls))
"""

# Named URLs that are not pages a person reads: actions (POST), downloads, machine endpoints.
NOT_PAGES = {
    "accounts:login": "checked signed out, before the roles",
    "accounts:logout": "POST",
    "accounts:lockout_unlock": "POST",
    "accounts:sso_login": "a redirect to the single sign-on provider",
    "accounts:sso_callback": "the provider's redirect back (no page of its own)",
    "accounts:recovery_codes_new": "POST",
    "accounts:person_roles": "POST",
    "accounts:person_reach": "POST",
    "accounts:person_active": "POST",
    "accounts:person_factor_reset": "POST",
    "integrations:destination_test": "POST",
    "integrations:route_replay": "POST",
    "integrations:delivery_replay": "POST",
    "integrations:payload_link": "a signed payload download for a destination",
    "mailboxes:handshake": "POST",
    "mailboxes:poll": "POST",
    "mailboxes:workflow_add": "POST",
    "mailboxes:workflow_remove": "POST",
    "messaging:export": "CSV download",
    "messaging:download": "payload download",
    "messaging:resend": "POST",
    "messaging:track": "POST",
    "messaging:inbound_failure": "POST",
    "certificates:download_csr": "PEM download",
    "certificates:install": "POST",
    "certificates:ticket": "POST",
    "onboarding:task_update": "POST",
    "onboarding:task_reopen": "POST",
    "onboarding:task_certificate": "POST",
    "onboarding:evidence_upload": "POST",
    "onboarding:task_letter": "POST",
    "onboarding:evidence": "file download",
    "onboarding:letter_create": "POST",
    "onboarding:letter_edit": "POST",
    "onboarding:letter_regenerate": "POST",
    "onboarding:letter_download": ".eml download",
    "onboarding:letter_sent": "POST",
    "onboarding:letter_reply": "POST",
    "onboarding:allow_list_add": "POST",
    "onboarding:allow_list_remove": "POST",
    "onboarding:gate_revoke": "POST",
    "conformance:evidence": "zip download",
    "audit:export": "CSV download",
    "audit:verify": "POST",
    "alerts:acknowledge": "POST",
    "alerts:snooze": "POST",
    "api_tokens:revoke": "POST",
    "api_tokens:expire": "POST",
}
# Whole namespaces that are no portal pages: the JSON API (its docs page is Swagger UI's, not
# ours), the health and metrics endpoints, Django's admin (its own markup).
NOT_PAGE_NAMESPACES = ("api", "ops", "admin")


def url_names(patterns=None, namespace=None) -> set[str]:
    names = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            names |= url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name and namespace:
            names.add(f"{namespace}:{pattern.name}")
    return names


@pytest.fixture(scope="module")
def pages(demo_stack) -> dict[str, str]:
    result = demo_stack.manage("shell", "-c", SEED_AND_LIST_PAGES)
    return json.loads(result.stdout.strip().splitlines()[-1])


# WCAG 2.x A and AA rules (UI.md's bar); axe's best-practice rules are left out to keep it quick.
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
}


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page (axe is in every page of the
    context, added by `checked_context`, so its 500 kB are not sent again for each page)."""
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:3])
        for v in results["violations"]
        if v["impact"] in SERIOUS
    ]


def test_the_sweep_covers_every_page_of_the_portal(pages):
    names = {n for n in url_names() if n.split(":")[0] not in NOT_PAGE_NAMESPACES}
    assert sorted(names - set(pages) - set(NOT_PAGES)) == []
    assert sorted(set(pages) & set(NOT_PAGES)) == []


def checked_context(browser):
    from axe_playwright_python.base import AXE_SCRIPT

    context = browser.new_context()
    context.add_init_script(script=AXE_SCRIPT)
    return context


def test_no_page_has_a_serious_or_critical_violation_for_any_role(demo_stack, browser, pages):
    found: dict[str, list[str]] = {}
    refused_checked = False
    context = checked_context(browser)
    page = context.new_page()
    page.goto(demo_stack.url + "/accounts/login/")
    found["signed out: login"] = serious_violations(page)
    # The checker finds what it should: an image without text and an unlabelled field.
    page.evaluate("document.body.innerHTML = '<main><img src=x.png><input type=text></main>'")
    assert {v.split(" ")[0] for v in serious_violations(page)} >= {"image-alt", "label"}
    context.close()
    for role in ROLES:
        context = checked_context(browser)
        page = context.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, demo_stack, role)
        for name, url in pages.items():
            response = page.goto(demo_stack.url + url)
            if response.status in (403, 404):
                if refused_checked:
                    continue
                refused_checked = True
            else:
                assert response.status == 200, f"{role} {name}: HTTP {response.status}"
            found[f"{role}: {name}"] = serious_violations(page)
        context.close()
    problems = {where: v for where, v in found.items() if v}
    assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)
