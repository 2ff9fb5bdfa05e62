"""Every change and every sensitive read leaves an audit record: who, when, where, what, why.

The walk below posts to every mutating URL of the core apps, onboarding and the conformance
self-test (and reads every sensitive one) and checks the record it leaves. A guard test fails when
a new URL appears in those apps, so that it is added to the walk, or to the read-only list on
purpose.
"""

from __future__ import annotations

import io
import itertools

import pytest
from axes.models import AccessAttempt
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.certificates.services import certificate_create_csr
from portal.conformance.models import ConformanceRun, Outcome, RunStatus
from portal.conformance.services import run_create
from portal.mailboxes.models import Environment
from portal.messaging import inbox, outbox
from portal.messaging.models import Direction, InboundFailure, Message, MessageType, Status
from portal.messaging.tasks import poll_mailbox
from portal.onboarding import correspondence as letters
from portal.onboarding import services as onboarding
from portal.onboarding.gate import gate_override_create
from portal.onboarding.models import Correspondence
from tests.accounts.access import make_message
from tests.certificates.test_views import issue
from tests.factories import make_mailbox, make_organisation, make_user
from tests.messaging.helpers import queue
from tests.onboarding.helpers import PDF, add_evidence, make_live_mailbox, make_plan, task, upload

pytestmark = pytest.mark.django_db

CORE_NAMESPACES = {
    "accounts",
    "dashboard",
    "mailboxes",
    "certificates",
    "messaging",
    "audit",
    "onboarding",
    "conformance",
}
# Pages that only read what every role of theirs may see: not audited, on purpose.
READ_ONLY = {
    "accounts:lockouts",
    "accounts:people",
    "accounts:person",
    "accounts:factor_home",
    # The second factor's own steps and the invitation's link are audited in their own tests
    # (tests/accounts/test_factor.py, test_people.py): each needs a device or a token first.
    "accounts:factor_enrol",
    "accounts:factor_verify",
    "accounts:recovery_codes_new",
    "accounts:password_set",
    "dashboard:home",
    "mailboxes:list",
    "mailboxes:detail",
    "mailboxes:organisations",
    "certificates:list",
    "certificates:detail",
    "messaging:list",
    "messaging:detail",
    "messaging:lookup",
    "audit:trail",
    "audit:detail",
    "onboarding:list",
    "onboarding:my_tasks",
    "onboarding:detail",
    "onboarding:report",
    "onboarding:task",
    "onboarding:letter",
    "onboarding:allow_list",
    "onboarding:gate",
    "conformance:list",
    "conformance:detail",
    "conformance:report",
}


@pytest.fixture
def world(db):
    mailbox = make_mailbox("X26ABC1")
    make_mailbox("X26ABC2")
    certificate = certificate_create_csr(mailbox=mailbox)
    failed = make_message(
        mailbox, direction=Direction.OUTBOUND, status=Status.FAILED, mesh_status_code="12"
    )
    accepted = make_message(
        mailbox,
        direction=Direction.OUTBOUND,
        status=Status.ACCEPTED,
        mesh_message_id="20261203000000000000_AUDIT1",
        accepted_at=timezone.now(),
    )
    quarantined = InboundFailure.objects.create(
        mailbox=mailbox,
        mesh_message_id="20260101000000000000_ABCDEF",
        reason="too large",
        status=InboundFailure.State.QUARANTINED,
    )
    return {
        "mailbox": mailbox,
        "certificate": certificate,
        "failed": failed,
        "inbound": make_message(mailbox, payload=b"a,b\n"),
        "quarantined": quarantined,
        "accepted": accepted,
    }


@pytest.fixture
def plan_world(world, lead_user):
    """A live go-live plan with letters, evidence, an allow-list entry, an override; a finished run."""
    plan = make_plan()
    stale = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    Correspondence.objects.filter(pk=stale.pk).update(body="An edit the plan no longer says.")
    sent = letters.correspondence_draft(plan=plan, kind="nsd_change_query")
    letters.correspondence_mark_sent(correspondence=sent, sent_on=timezone.localdate())
    other = make_organisation(name="Other Trust", ods_code="R1A")
    csr = certificate_create_csr(mailbox=plan.target_mailbox)
    # NeoMesh linked the new CSR to its task; unlinked, so that linking it by hand is a change.
    plan.tasks.filter(key="production-csr").update(certificate=None)
    return {
        "plan": plan,
        "task": task(plan, "nsd-query"),
        "decision": plan.decisions.get(),
        "letter": letters.correspondence_draft(plan=plan, kind="nsd_change_query"),
        "stale": stale,
        "sent": sent,
        "evidence": add_evidence(plan, task(plan, "review-submission")),
        "csr": csr,
        "entry": onboarding.allowlist_add(
            organisation=plan.organisation, environment="live", address="81.2.69.8", purpose="NAT"
        ),
        "override": gate_override_create(
            mailbox=make_live_mailbox("X26LIVE2"), reason="A reason long enough to keep"
        ),
        "new_live": make_live_mailbox("R1ALIVE1", organisation=other),
        "run": finished_run(world["mailbox"]),
    }


def finished_run(mailbox) -> ConformanceRun:
    peer = type(mailbox).objects.get(mailbox_id="X26ABC2")
    run = run_create(mailbox=mailbox, peer=peer, enqueue=False)
    run.results.update(outcome=Outcome.PASSED, reason="Fine.", duration_ms=12)
    ConformanceRun.objects.filter(pk=run.pk).update(
        status=RunStatus.PASSED, summary="passed", finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def plan_args(key=None):
    return lambda w: [w["plan"].pk] + ([w[key].pk] if key else [])


def task_args(key):
    return lambda w: [w["plan"].pk, task(w["plan"], key).pk]


TODAY = timezone.localdate().isoformat()
REPLY_EML = b"From: ssd.nationalservicedesk@nhs.net\r\nSubject: CS0123456\r\n\r\nValid.\r\n"


def mailbox_form(w, **overrides) -> dict:
    data = {
        "organisation": make_organisation().pk,
        "environment": "sandbox",
        "mailbox_id": "X26ABC1",
        "name": "Renamed",
        "base_url": "",
        "new_password": "",
        "new_shared_key": "",
        "ca_bundle": "",
        "verify_tls": "on",
        "enabled": "on",
        "poll_interval_minutes": "5",
        "max_request_bytes": "20000000",
    }
    return data | overrides


# (URL name, method, args(world), data(world), action expected, object(world) or None)
def locked_out(w) -> dict:
    AccessAttempt.objects.create(
        username="someone",
        ip_address="203.0.113.9",
        user_agent="x",
        failures_since_start=5,
        attempt_time=timezone.now(),
    )
    return {"username": "someone", "address": "203.0.113.9"}


def person(w) -> list[int]:
    return [make_user(None, username=f"walk-person-{next(_people)}").pk]


_people = itertools.count(1)

WALK = [
    ("accounts:lockout_unlock", "post", lambda w: [], locked_out, "auth.lockout_cleared", None),
    (
        "accounts:person_invite",
        "post",
        lambda w: [],
        lambda w: {"username": "walk-invited"},
        "person.invited",
        None,
    ),
    (
        "accounts:person_roles",
        "post",
        person,
        lambda w: {"roles": ["Auditor"]},
        "person.roles_changed",
        None,
    ),
    (
        "accounts:person_reach",
        "post",
        person,
        lambda w: {},  # from every organisation (the factory's default) to none
        "person.reach_changed",
        None,
    ),
    (
        "accounts:person_active",
        "post",
        person,
        lambda w: {"active": "0", "reason": "Left the trust"},
        "person.disabled",
        None,
    ),
    (
        "accounts:person_factor_reset",
        "post",
        person,
        lambda w: {"reason": "Lost phone"},
        "auth.factor_reset",
        None,
    ),
    (
        "mailboxes:create",
        "post",
        lambda w: [],
        lambda w: mailbox_form(
            w, mailbox_id="X26NEW1", new_password="pw-123456789", new_shared_key="k"
        ),
        "mailbox.create",
        None,
    ),
    (
        "mailboxes:edit",
        "post",
        lambda w: [w["mailbox"].pk],
        mailbox_form,
        "mailbox.update",
        "mailbox",
    ),
    (
        "mailboxes:handshake",
        "post",
        lambda w: [w["mailbox"].pk],
        lambda w: {},
        "mailbox.handshake_requested",
        "mailbox",
    ),
    (
        "mailboxes:poll",
        "post",
        lambda w: [w["mailbox"].pk],
        lambda w: {},
        "mailbox.poll_requested",
        "mailbox",
    ),
    (
        "mailboxes:workflow_add",
        "post",
        lambda w: [w["mailbox"].pk],
        lambda w: {"workflow_id": "NEW_WF", "direction": "send"},
        "workflow.create",
        None,
    ),
    (
        "mailboxes:workflow_remove",
        "post",
        lambda w: [w["mailbox"].pk, w["mailbox"].workflows.first().pk],
        lambda w: {},
        "workflow.delete",
        None,
    ),
    (
        "mailboxes:organisation_create",
        "post",
        lambda w: [],
        lambda w: {"name": "Other Trust", "ods_code": "R1A"},
        "organisation.create",
        None,
    ),
    (
        "certificates:create_csr",
        "post",
        lambda w: [w["mailbox"].pk],
        lambda w: {"confirmed": "yes"},
        "certificate.csr_created",
        None,
    ),
    (
        "certificates:download_csr",
        "get",
        lambda w: [w["certificate"].pk],
        lambda w: {},
        "certificate.csr_downloaded",
        "certificate",
    ),
    (
        "certificates:install",
        "post",
        lambda w: [w["certificate"].pk],
        lambda w: {"pem_text": issue(w["certificate"])},
        "certificate.installed",
        "certificate",
    ),
    (
        "certificates:ticket",
        "post",
        lambda w: [w["certificate"].pk],
        lambda w: {"service_desk_ticket": "INC77"},
        "certificate.update",
        "certificate",
    ),
    (
        "messaging:send",
        "post",
        lambda w: [],
        lambda w: {
            "mailbox": "X26ABC1",
            "recipient": "X26ABC2",
            "workflow_id": "TEST_WORKFLOW",
            "subject": "Hi",
            "local_id": "",
            "file": SimpleUploadedFile("a.txt", b"hello"),
        },
        "message.queued",
        None,
    ),
    (
        "messaging:send_bulk",
        "post",
        lambda w: [],
        lambda w: {
            "mailbox": "X26ABC1",
            "recipient": "X26ABC2",
            "workflow_id": "TEST_WORKFLOW",
            "files": [SimpleUploadedFile("a.txt", b"hello"), SimpleUploadedFile("b.txt", b"hi")],
        },
        "message.queued",
        None,
    ),
    (
        "messaging:resend",
        "post",
        lambda w: [w["failed"].pk],
        lambda w: {},
        "message.resend",
        "failed",
    ),
    (
        "messaging:fix",
        "post",
        lambda w: [w["failed"].pk],
        lambda w: {
            "mailbox": "X26ABC1",
            "recipient": "X26ABC2",
            "workflow_id": "TEST_WORKFLOW",
            "subject": "Fixed",
            "local_id": "",
        },
        "message.queued",
        None,
    ),
    (
        "messaging:track",
        "post",
        lambda w: [w["accepted"].pk],
        lambda w: {},
        "message.track_requested",
        "accepted",
    ),
    (
        "messaging:inbound_failure",
        "post",
        lambda w: [w["quarantined"].pk],
        lambda w: {"action": "leave"},
        "message.quarantine_left",
        "mailbox",
    ),
    (
        "messaging:download",
        "get",
        lambda w: [w["inbound"].pk],
        lambda w: {},
        "message.payload_downloaded",
        "inbound",
    ),
    (
        "audit:export",
        "get",
        lambda w: [],
        lambda w: {"action": "message.queued"},
        "audit.trail_exported",
        None,
    ),
    ("audit:verify", "post", lambda w: [], lambda w: {}, "audit.verification_requested", None),
    (
        "messaging:export",
        "get",
        lambda w: [],
        lambda w: {"direction": "in"},
        "audit.message_log_exported",
        None,
    ),
    # Onboarding (the plan_world fixture).
    (
        "onboarding:create",
        "post",
        lambda w: [],
        lambda w: {
            "template": "client-change",
            "organisation": w["new_live"].organisation.pk,
            "environment": "live",
            "target_mailbox": w["new_live"].pk,
            "start_date": TODAY,
        },
        "onboarding.plan_created",
        None,
    ),
    ("onboarding:edit", "post", plan_args(), lambda w: {}, "plan.update", "plan"),
    (
        "onboarding:task_update",
        "post",
        plan_args("task"),
        lambda w: {"status": "in_progress"},
        "task.update",
        "task",
    ),
    (
        # 1.4 was completed by NeoMesh when plan_world recorded its live allow-list entry.
        "onboarding:task_reopen",
        "post",
        task_args("production-ips"),
        lambda w: {"reason": "the NAT address changes"},
        "onboarding.task_reopened",
        None,
    ),
    (
        "onboarding:task_certificate",
        "post",
        task_args("production-csr"),
        lambda w: {"certificate": w["csr"].pk},
        "task.update",
        None,
    ),
    (
        "onboarding:evidence_upload",
        "post",
        task_args("review-submission"),
        lambda w: {
            "kind": "conformance_certificate",
            "title": "TCC",
            "file": upload("tcc.pdf", PDF),
        },
        "onboarding.evidence_uploaded",
        None,
    ),
    (
        "onboarding:task_letter",
        "post",
        plan_args("task"),
        lambda w: {},
        "onboarding.correspondence_drafted",
        None,
    ),
    (
        "onboarding:evidence",
        "get",
        plan_args("evidence"),
        lambda w: {},
        "onboarding.evidence_downloaded",
        "evidence",
    ),
    (
        "onboarding:decision",
        "post",
        plan_args("decision"),
        lambda w: {
            "option": "valid",
            "reply_text": "It remains valid.",
            "ticket_reference": "CS0123456",
            "reply_file": upload("reply.eml", REPLY_EML),
        },
        "onboarding.decision_recorded",
        "decision",
    ),
    (
        "onboarding:letter_create",
        "post",
        plan_args(),
        lambda w: {"kind": "nsd_change_query"},
        "onboarding.correspondence_drafted",
        None,
    ),
    (
        "onboarding:letter_edit",
        "post",
        plan_args("letter"),
        lambda w: {
            "to_addresses": "ssd.nationalservicedesk@nhs.net",
            "cc_addresses": "",
            "subject": "Edited",
            "body": "Edited body",
        },
        "correspondence.update",
        "letter",
    ),
    (
        "onboarding:letter_regenerate",
        "post",
        plan_args("stale"),
        lambda w: {},
        "correspondence.update",
        "stale",
    ),
    (
        "onboarding:letter_download",
        "get",
        plan_args("letter"),
        lambda w: {},
        "onboarding.correspondence_downloaded",
        "letter",
    ),
    (
        "onboarding:letter_sent",
        "post",
        plan_args("letter"),
        lambda w: {"sent_on": TODAY},
        "onboarding.correspondence_sent",
        "letter",
    ),
    (
        "onboarding:letter_reply",
        "post",
        plan_args("sent"),
        lambda w: {"reply_text": "Received.", "replied_on": TODAY},
        "onboarding.correspondence_replied",
        "sent",
    ),
    (
        "onboarding:allow_list_add",
        "post",
        plan_args(),
        lambda w: {"network": "81.2.69.7", "purpose": "NAT", "environment": "live"},
        "allowlistentry.create",
        None,
    ),
    (
        "onboarding:allow_list_remove",
        "post",
        plan_args("entry"),
        lambda w: {},
        "allowlistentry.delete",
        "entry",
    ),
    (
        "onboarding:gate_override",
        "post",
        lambda w: [w["plan"].target_mailbox.pk],
        lambda w: {"reason": "Clinical safety incident needs results tonight", "confirm": "on"},
        "onboarding.gate_overridden",
        None,
    ),
    (
        "onboarding:gate_revoke",
        "post",
        lambda w: [w["override"].pk],
        lambda w: {"reason": "done"},
        "onboarding.gate_override_revoked",
        "override",
    ),
    # The conformance self-test.
    (
        "conformance:new",
        "post",
        lambda w: [],
        lambda w: {"mailbox": "X26ABC1", "peer": "X26ABC2", "scenarios": ["handshake"]},
        "conformance.run_started",
        None,
    ),
    (
        "conformance:evidence",
        "get",
        lambda w: [w["run"].pk],
        lambda w: {},
        "conformance.evidence_downloaded",
        "run",
    ),
]
# Who walks each URL: the role that may use it.
WALKER = {
    "accounts:": "superuser",
    "audit:": "auditor_user",
    "messaging:export": "auditor_user",
    "onboarding:gate": "admin_user",
    "onboarding:": "lead_user",
    "conformance:evidence": "auditor_user",
    "conformance:": "lead_user",
}


def walker(request, name: str):
    """The first matching prefix wins; mailbox admins walk the rest."""
    persona = next((p for prefix, p in WALKER.items() if name.startswith(prefix)), "admin_user")
    return request.getfixturevalue(persona)


@pytest.mark.parametrize(
    ("name", "method", "args", "data", "action", "target"), WALK, ids=[w[0] for w in WALK]
)
def test_it_audits_every_change_and_sensitive_read(
    client, request, world, name, method, args, data, action, target
):
    user = walker(request, name)
    if name.startswith(("onboarding:", "conformance:")):
        world = world | request.getfixturevalue("plan_world")
    client.force_login(user)
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    response = getattr(client, method)(reverse(name, args=args(world)), data(world))
    assert response.status_code in (200, 302), response.content[:300]
    if response.streaming:
        b"".join(response.streaming_content)
    made = AuditRecord.objects.filter(seq__gt=last, action=action)
    assert made.exists(), list(
        AuditRecord.objects.filter(seq__gt=last).values_list("action", flat=True)
    )
    entry = made.first()
    assert (entry.actor, entry.actor_label, entry.actor_kind) == (user, user.username, "person")
    assert entry.ip_address == "127.0.0.1" and entry.at <= timezone.now()
    if target:
        obj = world[target]
        assert (entry.object_type, entry.object_id) == (obj._meta.label_lower, str(obj.pk))


AUDITED_READS = [w for w in WALK if w[1] == "get"]


@pytest.mark.parametrize(
    ("name", "method", "args", "data", "action", "target"),
    AUDITED_READS,
    ids=[w[0] for w in AUDITED_READS],
)
def test_it_refuses_an_audited_download_another_site_started(
    client, request, world, name, method, args, data, action, target
):
    user = walker(request, name)
    if name.startswith(("onboarding:", "conformance:")):
        world = world | request.getfixturevalue("plan_world")
    client.force_login(user)
    url = reverse(name, args=args(world))
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    refused = client.get(url, data(world), headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert "started by another website" in refused.content.decode()
    assert not AuditRecord.objects.filter(seq__gt=last, action=action).exists()
    # The same download from NeoMesh's own page (or typed in) is served and recorded.
    for origin in ("same-origin", "none"):
        response = client.get(url, data(world), headers={"Sec-Fetch-Site": origin})
        assert response.status_code == 200, response.content[:300]
        if response.streaming:
            b"".join(response.streaming_content)
    assert AuditRecord.objects.filter(seq__gt=last, action=action).count() == 2


def test_the_apis_payload_download_refuses_another_sites_fetch_too(client, world, admin_user):
    client.force_login(admin_user)
    url = f"/api/v1/messages/{world['inbound'].pk}/payload/"
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    refused = client.get(url, headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert not AuditRecord.objects.filter(seq__gt=last).exists()
    served = client.get(url, headers={"Sec-Fetch-Site": "same-origin"})
    assert served.status_code == 200
    assert AuditRecord.objects.filter(seq__gt=last).exists()


def test_the_walk_covers_every_url_of_the_core_apps():
    names = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace in CORE_NAMESPACES:
            names |= {f"{pattern.namespace}:{p.name}" for p in pattern.url_patterns if p.name}
    # Single sign-on's round trip needs the provider: tests/accounts/test_sso.py audits it.
    signing_in = {
        "accounts:login",
        "accounts:logout",
        "accounts:sso_login",
        "accounts:sso_callback",
    }
    walked = {w[0] for w in WALK} | signing_in
    assert names - walked - READ_ONLY == set(), "add new URLs to the walk, or to READ_ONLY"


def test_it_audits_sign_in_sign_out_and_a_lockout_with_the_address(client, admin_user, settings):
    login = reverse("accounts:login")
    # Failures themselves are not sealed into the chain (anyone can make them): the lockout is.
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            login,
            {"username": admin_user.username, "password": "wrong"},
            REMOTE_ADDR="198.51.100.9",
        )
    client.post(
        login, {"username": admin_user.username, "password": "wrong"}, REMOTE_ADDR="198.51.100.7"
    )
    client.post(
        login,
        {"username": admin_user.username, "password": "a-long-test-password"},
        REMOTE_ADDR="198.51.100.7",
    )
    client.post(reverse("accounts:logout"), REMOTE_ADDR="198.51.100.7")
    trail = AuditRecord.objects.filter(action__startswith="auth.").order_by("seq")
    assert [(r.action, r.actor_label, r.ip_address) for r in trail] == [
        ("auth.lockout", admin_user.username, "198.51.100.9"),
        ("auth.login", admin_user.username, "198.51.100.7"),
        ("auth.logout", admin_user.username, "198.51.100.7"),
    ]


def test_a_model_change_records_before_after_and_the_address(client, admin_user, world):
    client.force_login(admin_user)
    url = reverse("mailboxes:edit", args=[world["mailbox"].pk])
    client.post(url, mailbox_form(world), REMOTE_ADDR="192.0.2.44")
    entry = AuditRecord.objects.for_object(world["mailbox"]).filter(action="mailbox.update").get()
    assert entry.changes["name"] == ["", "Renamed"]
    assert (entry.actor, entry.ip_address) == (admin_user, "192.0.2.44")


def test_disabling_a_live_mailbox_records_the_reason(client, admin_user):
    live = make_mailbox("X26LIV1", environment=Environment.LIVE)
    client.force_login(admin_user)
    data = mailbox_form(
        {},
        mailbox_id="X26LIV1",
        environment="live",
        confirm_disable="on",
        disable_reason="Supplier contract ended today",
    )
    data.pop("enabled")
    client.post(reverse("mailboxes:edit", args=[live.pk]), data)
    entry = AuditRecord.objects.for_object(live).get(action="mailbox.disabled")
    assert entry.reason == "Supplier contract ended today"


def test_installing_a_certificate_records_the_one_it_supersedes(client, admin_user, world):
    client.force_login(admin_user)
    first = world["certificate"]
    client.post(reverse("certificates:install", args=[first.pk]), {"pem_text": issue(first)})
    second = certificate_create_csr(mailbox=world["mailbox"])
    client.post(reverse("certificates:install", args=[second.pk]), {"pem_text": issue(second)})
    entry = AuditRecord.objects.for_object(first).get(action="certificate.superseded")
    assert entry.changes == {"status": ["active", "superseded"]} and entry.actor == admin_user


# Worker actions


def worker_records(obj, action: str):
    return AuditRecord.objects.for_object(obj).filter(action=action, actor_kind="worker")


def test_a_send_held_back_for_a_retry_is_audited(world):
    mailbox = world["mailbox"]
    message = queue(mailbox, b"data")
    type(mailbox).objects.filter(pk=mailbox.pk).update(enabled=False)
    assert outbox.message_send(message_id=message.pk) == Status.QUEUED
    assert "disabled" in worker_records(message, "message.retry").get().detail


def test_a_dead_workers_claim_released_is_audited(world):
    message = queue(world["mailbox"], b"data")
    stale = timezone.now() - outbox.CLAIM_LEASE * 2
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_at=stale, claimed_by="dead-host:1"
    )
    outbox.outbox_sweep()
    assert "dead-host:1" in worker_records(message, "message.claim_released").get().detail


def test_a_non_delivery_report_failing_a_message_is_audited(world):
    sent = make_message(world["mailbox"], direction=Direction.OUTBOUND, mesh_message_id="SENT-1")
    report = make_message(
        world["mailbox"],
        message_type=MessageType.REPORT,
        mesh_status_code="14",
        linked_mesh_message_id="SENT-1",
    )
    inbox._link_report(report)
    assert "Non-delivery report" in worker_records(sent, "message.failed").get().detail


def test_worker_handshakes_and_failed_polls_are_audited(world):
    from portal.mailboxes.tasks import handshake_mailbox

    broken = make_mailbox("X26BRK1", password="")
    handshake_mailbox(broken.pk)
    poll_mailbox(broken.pk)
    assert "failed" in worker_records(broken, "mailbox.handshake").get().detail
    assert worker_records(broken, "mailbox.poll_failed").exists()


def test_operator_commands_are_audited(world, capsys):
    call_command("rotate_encryption_keys")
    call_command("mesh_csr", "X26ABC1")  # prints the CSR awaiting a certificate
    assert AuditRecord.objects.filter(
        action="secrets.rotated", actor_label__startswith="command line"
    ).exists()
    entry = AuditRecord.objects.for_object(world["certificate"]).get(
        action="certificate.csr_downloaded"
    )
    assert entry.actor_label.startswith("command line")


def test_a_command_line_send_is_audited(world, tmp_path):
    path = tmp_path / "extract.csv"
    path.write_bytes(b"x,y\n")
    call_command(
        "mesh_send",
        "X26ABC1",
        str(path),
        "--to",
        "X26ABC2",
        "--workflow",
        "TEST_WORKFLOW",
        stdout=io.StringIO(),
    )
    message = Message.objects.get(filename="extract.csv")
    assert AuditRecord.objects.for_object(message).filter(action="message.queued").exists()
