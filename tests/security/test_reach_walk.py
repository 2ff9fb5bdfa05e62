"""Reach, walked: every URL of the portal and the API, as a person (and a token) of organisation A
given organisation B's objects, answers 404 (or a list without B's rows); the same URLs answer a
person (and a token) of B, so the walk cannot pass by refusing everyone.

The access-control matrix by reach: each URL pattern is resolved from the URLconf, its kwargs
filled from B's objects (KWARGS); a pattern the walk cannot fill fails the test until it is named
here, so a new page is walked from the day it lands.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from portal.accounts import roles
from portal.alerts.models import Alert
from portal.audit.services import Actor, record
from portal.certificates.services import certificate_create_csr
from portal.conformance.models import ConformanceRun, RunStatus
from portal.conformance.services import run_create
from portal.integrations.models import Delivery, DeliveryState, Destination, DestinationKind
from portal.messaging.models import InboundFailure
from portal.onboarding import correspondence as letters
from portal.onboarding import services as onboarding
from portal.onboarding.gate import gate_override_create
from tests.accounts.access import make_message
from tests.api.conftest import make_token
from tests.factories import make_mailbox, make_organisation, make_user
from tests.integrations.helpers import route_to
from tests.onboarding.helpers import add_evidence, make_int_mailbox, make_live_mailbox, make_plan

pytestmark = pytest.mark.django_db

# Everything of B's carries this word (any case); nothing of A's does.
MARK = re.compile(rb"bravo", re.IGNORECASE)

# Not walked, and why.
SKIPPED = {
    "admin": "the Django admin is for superusers only, who see everything",
    "ops": "/healthz and /metrics answer load balancers and Prometheus, not people",
    "accounts:logout": "ends the walking session",
    "accounts:sso_login": "the sign-on round trip (tests/accounts/test_sso.py)",
    "accounts:sso_callback": "the sign-on round trip (tests/accounts/test_sso.py)",
    "integrations:payload_link": "a signed link is its own credential (tests/integrations)",
    "accounts:password_set": "a signed one-time invitation link (tests/accounts/test_people.py)",
    **dict.fromkeys(
        [
            "accounts:person",
            "accounts:person_roles",
            "accounts:person_reach",
            "accounts:person_active",
            "accounts:person_factor_reset",
        ],
        "people management is for superusers, who see everyone; 403 to all others "
        "whichever person is named (tests/accounts/test_people.py)",
    ),
}
# Pages about no organisation's objects (sign-in, lockouts, the API's schema): A sees them as B
# does; the walk still checks they show nothing of B's.
NEUTRAL = {
    "accounts:login",
    "accounts:lockouts",
    "accounts:lockout_unlock",
    "api:schema",
    "api:docs",
}
# Lists whose rows B must see (the walk is not vacuous) and A must not.
B_LISTS = {
    "dashboard:home",
    "mailboxes:list",
    "mailboxes:organisations",
    "messaging:list",
    "messaging:export",
    "certificates:list",
    "onboarding:list",
    "conformance:list",
    "alerts:inbox",
    "audit:trail",
    "audit:export",
    "api_tokens:list",
    "api:messages",
    "integrations:list",
}
# kwarg -> B's object, per namespace where the same name means different rows.
KWARGS = {
    ("mailboxes", "pk"): "mailbox",
    ("messaging", "pk"): "message",
    ("messaging:inbound_failure", "pk"): "failure",
    ("certificates", "pk"): "certificate",
    ("certificates", "mailbox_pk"): "mailbox",
    ("onboarding", "pk"): "plan",
    ("onboarding", "mailbox_pk"): "live",
    ("conformance", "pk"): "run",
    ("alerts", "pk"): "alert",
    ("api", "pk"): "message",
    ("api_tokens", "pk"): "token",
    ("audit", "seq"): "record",
    ("integrations:destination_edit", "pk"): "destination",
    ("integrations:destination_test", "pk"): "destination",
    ("integrations:route_edit", "pk"): "route",
    ("integrations:route_replay", "pk"): "route",
    ("integrations:delivery_replay", "pk"): "delivery",
    # People pages (portal/accounts): B's person.
    ("accounts", "pk"): "person",
    ("accounts", "user_pk"): "person",
    ("*", "workflow_pk"): "workflow",
    ("*", "task_pk"): "task",
    ("*", "evidence_pk"): "evidence",
    ("*", "decision_pk"): "decision",
    ("*", "letter_pk"): "letter",
    ("*", "entry_pk"): "entry",
    ("*", "override_pk"): "override",
}


def patterns(resolver=None, namespace=""):
    """(namespaced name, kwarg names) of every named URL pattern."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace or ""]))
            yield from patterns(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield name, list(entry.pattern.converters)


def person(username: str, organisation):
    """Every role's permissions, reach over one organisation only."""
    user = make_user(username=username, organisations=[organisation])
    roles.ensure_roles()
    user.groups.add(*Group.objects.filter(name__in=roles.ROLE_PERMISSIONS))
    return user


def build_world():
    alpha = make_organisation(name="Alpha Care", ods_code="ALPHA")
    bravo = make_organisation(name="Bravo Health", ods_code="BRAVO")
    a_mailbox = make_mailbox("ALPHA01", organisation=alpha)
    make_message(a_mailbox, filename="alpha.csv", sender="ALPHA02")
    mailbox = make_mailbox("BRAVO01", organisation=bravo)
    peer = make_mailbox("BRAVO02", organisation=bravo)
    live = make_live_mailbox("BRAVOLIVE1", organisation=bravo)
    plan = make_plan(
        organisation=bravo,
        target_mailbox=live,
        integration_mailbox=make_int_mailbox("BRAVOINT1", organisation=bravo),
    )
    message = make_message(mailbox, filename="bravo.csv", subject="Bravo", sender="BRAVO02")
    run = run_create(mailbox=mailbox, peer=peer, enqueue=False)
    ConformanceRun.objects.filter(pk=run.pk).update(
        status=RunStatus.PASSED, summary="passed", finished_at=timezone.now()
    )
    users = {"a": person("alpha-person", alpha), "b": person("bravo-person", bravo)}
    b_token, b_secret = make_token(users["b"], [mailbox], name="Bravo pipeline")
    _, a_secret = make_token(users["a"], [a_mailbox], name="Alpha pipeline")
    task = plan.tasks.order_by("position").first()
    destination = Destination.objects.create(
        name="Bravo drop", kind=DestinationKind.DIRECTORY, settings={"path": "/nonexistent"}
    )
    route = route_to(mailbox, destination, name="Bravo route")
    return {
        "person": users["b"],
        "destination": destination,
        "route": route,
        "delivery": Delivery.objects.create(
            message=message, destination=destination, route=route, state=DeliveryState.DEAD_LETTERED
        ),
        "users": users,
        "secrets": {"a": a_secret, "b": b_secret},
        "mailbox": mailbox,
        "live": live,
        "workflow": mailbox.workflows.first(),
        "message": message,
        "failure": InboundFailure.objects.create(
            mailbox=mailbox,
            mesh_message_id="20260101000000000000_BRAVO1",
            reason="too large",
            status=InboundFailure.State.QUARANTINED,
        ),
        "certificate": certificate_create_csr(mailbox=mailbox),
        "plan": plan,
        "task": task,
        "decision": plan.decisions.first(),
        "evidence": add_evidence(plan, task),
        "letter": letters.correspondence_draft(plan=plan, kind="nsd_change_query"),
        "entry": onboarding.allowlist_add(
            organisation=bravo, environment="live", address="81.2.69.142", purpose="Bravo NAT"
        ),
        "override": gate_override_create(mailbox=live, reason="Bravo's reason, long enough"),
        "run": run,
        "alert": Alert.objects.create(
            kind="message.ndr", severity="error", summary="Bravo alert", mailbox_id=mailbox.pk
        ),
        "token": b_token,
        "record": record(
            actor=Actor.system("test setup"), action="message.payload_downloaded", obj=message
        ),
    }


def url_for(name: str, kwargs: list[str], world) -> str:
    namespace = name.split(":")[0]
    values = {}
    for kwarg in kwargs:
        key = (
            KWARGS.get((name, kwarg)) or KWARGS.get((namespace, kwarg)) or KWARGS.get(("*", kwarg))
        )
        assert key, f"Name B's object for {kwarg!r} of {name} in KWARGS (tests/security)."
        row = world[key]
        values[kwarg] = row.seq if kwarg == "seq" else row.pk
    return reverse(name, kwargs=values)


def body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def fetch(client: Client, url: str, **headers):
    """GET, or POST (empty) where the view takes only POST."""
    response = client.get(url, **headers)
    if response.status_code == 405:
        response = client.post(url, **headers)
    return response


def walk(
    client: Client, world, only: str = "", neutral: bool = True, **headers
) -> dict[str, tuple[int, bool, bool]]:
    """name -> (status, shows B's rows, names an object) for every walked URL (`only` those whose
    name starts so; the neutral pages once, as A, for their cost: the API's schema is slow)."""
    seen = {}
    for name, kwargs in sorted(patterns()):
        if name in SKIPPED or name.split(":")[0] in SKIPPED or not name.startswith(only):
            continue
        if name in NEUTRAL and not neutral:
            continue
        response = fetch(client, url_for(name, kwargs, world), **headers)
        seen[name] = (response.status_code, bool(MARK.search(body(response))), bool(kwargs))
    return seen


def test_it_answers_404_out_of_reach_and_200_within_on_every_url(settings):
    settings.CONFORMANCE_AUTO_RUN = False
    world = build_world()
    # Tokens first: B's person revokes B's token on the way (api_tokens:revoke).
    tokens = {}
    for who in ("a", "b"):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {world['secrets'][who]}"}
        tokens[who] = walk(Client(), world, only="api:", neutral=who == "a", **auth)
    client = Client()
    client.force_login(world["users"]["a"])
    as_a = walk(client, world)
    client.force_login(world["users"]["b"])
    as_b = walk(client, world, neutral=False)

    problems = []
    for label, seen_a, seen_b in (("person", as_a, as_b), ("token", tokens["a"], tokens["b"])):
        for name, (status, leaked, has_object) in seen_a.items():
            status_b, shown_b, _ = seen_b.get(name, (200, False, False))
            if leaked:
                problems.append(f"{label} of A sees B's rows on {name} ({status})")
            if status >= 500 or status_b >= 500:
                problems.append(f"{name}: server error ({status}, {status_b})")
            if has_object and name not in NEUTRAL:
                if status != 404:
                    problems.append(f"{label} of A: {name} answers {status}, not 404")
                if status_b in (403, 404):
                    problems.append(f"{label} of B: {name} answers {status_b} for its own row")
            if name in B_LISTS and name in seen_b and not shown_b and status_b == 200:
                problems.append(f"{label} of B does not see its own rows on {name}")
    assert problems == []
    # Not vacuous: the walk covered the portal and the API, and B's own rows were there to see.
    assert len(as_a) >= 60 and len(tokens["a"]) >= 5
    assert all(as_b[name][1] for name in B_LISTS if not name.startswith("api:"))
    assert tokens["b"]["api:messages"][1] and not tokens["a"]["api:messages"][1]
