from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Task

from portal.audit.models import AuditRecord
from portal.mailboxes.models import Environment, Mailbox, Organisation, Workflow
from tests.accounts.access import (
    ADMIN_ONLY,
    ALL_ROLES,
    PERSONAS,
    as_persona,
    assert_access,
    assert_no_inline_code,
)
from tests.factories import make_mailbox, make_organisation

pytestmark = pytest.mark.django_db

SECRET_PASSWORD = "correct-horse-battery-staple-42"
SECRET_KEY = "shared-key-never-shown-9f8e7d"


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


def workflow_of(mailbox):
    return mailbox.workflows.first()


# (name, method, url(mailbox), data, allowed personas, status for an allowed persona)
CASES = [
    ("list", "get", lambda m: reverse("mailboxes:list"), None, ALL_ROLES, 200),
    ("detail", "get", lambda m: reverse("mailboxes:detail", args=[m.pk]), None, ALL_ROLES, 200),
    ("create", "get", lambda m: reverse("mailboxes:create"), None, ADMIN_ONLY, 200),
    ("edit", "get", lambda m: reverse("mailboxes:edit", args=[m.pk]), None, ADMIN_ONLY, 200),
    (
        "handshake",
        "post",
        lambda m: reverse("mailboxes:handshake", args=[m.pk]),
        {},
        ADMIN_ONLY,
        302,
    ),
    ("poll", "post", lambda m: reverse("mailboxes:poll", args=[m.pk]), {}, ADMIN_ONLY, 302),
    (
        "workflow_add",
        "post",
        lambda m: reverse("mailboxes:workflow_add", args=[m.pk]),
        {"workflow_id": "NEW_WF", "direction": "send"},
        ADMIN_ONLY,
        302,
    ),
    (
        "workflow_remove",
        "post",
        lambda m: reverse("mailboxes:workflow_remove", args=[m.pk, workflow_of(m).pk]),
        {},
        ADMIN_ONLY,
        302,
    ),
    ("organisations", "get", lambda m: reverse("mailboxes:organisations"), None, ALL_ROLES, 200),
    (
        "organisation_create",
        "get",
        lambda m: reverse("mailboxes:organisation_create"),
        None,
        ADMIN_ONLY,
        200,
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "method", "url", "data", "allowed", "ok"), CASES, ids=[c[0] for c in CASES]
)
def test_it_checks_access_for_every_persona(
    client, request, mailbox, persona, name, method, url, data, allowed, ok
):
    as_persona(client, request, persona)
    response = getattr(client, method)(url(mailbox), data or {})
    assert_access(response, persona, allowed, ok)


@pytest.mark.parametrize("name", ["handshake", "poll", "workflow_add"])
def test_it_refuses_get_on_actions(client, admin_user, mailbox, name):
    client.force_login(admin_user)
    assert client.get(reverse(f"mailboxes:{name}", args=[mailbox.pk])).status_code == 405


def test_it_returns_404_for_an_unknown_mailbox(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("mailboxes:detail", args=[999])).status_code == 404


# List


def test_it_lists_mailboxes_with_filters(client, auditor_user):
    make_mailbox("X26ABC1")
    make_mailbox("X26LIV1", environment=Environment.LIVE)
    make_mailbox("X26OFF1", enabled=False)
    client.force_login(auditor_user)
    ids = lambda r: [m.mailbox_id for m in r.context["page"]]  # noqa: E731
    assert ids(client.get(reverse("mailboxes:list"))) == ["X26LIV1", "X26ABC1", "X26OFF1"]
    assert ids(client.get(reverse("mailboxes:list"), {"environment": "live"})) == ["X26LIV1"]
    assert ids(client.get(reverse("mailboxes:list"), {"enabled": "no"})) == ["X26OFF1"]
    response = client.get(reverse("mailboxes:list"), {"q": "nothing-like-this"})
    assert b"No mailboxes match these filters" in response.content


def test_it_says_what_to_do_when_there_are_no_mailboxes(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:list")).content.decode()
    assert "No mailboxes yet" in html
    assert reverse("mailboxes:create") in html
    assert_no_inline_code(html)


# Detail


def test_it_shows_the_mailbox_facts_health_and_workflows(client, lead_user, mailbox):
    mailbox.last_error = "<b>Handshake failed</b>: 403"
    mailbox.last_error_at = timezone.now()
    mailbox.save()
    client.force_login(lead_user)
    html = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert "X26ABC1" in html and "TEST_WORKFLOW" in html
    assert "&lt;b&gt;Handshake failed&lt;/b&gt;" in html
    assert "Test connection" not in html  # the lead may look, not act
    assert "Recent messages" not in html  # and has no access to messages
    assert_no_inline_code(html)


@pytest.mark.parametrize(
    ("base_url", "verify_tls", "says"),
    [
        ("http://127.0.0.1:8700", True, "None: plain HTTP, nothing is encrypted or verified"),
        ("https://localhost:8701", True, "Server certificate verified"),
        ("https://localhost:8701", False, "Not verified"),
    ],
)
def test_it_says_whether_the_tls_certificate_is_verified_only_over_https(
    client, admin_user, base_url, verify_tls, says
):
    mailbox = make_mailbox("X26ABC1", base_url=base_url, verify_tls=verify_tls)
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert f"<dt>TLS</dt><dd>{says}" in html
    if base_url.startswith("http:"):
        assert "Server certificate verified" not in html


def test_it_never_renders_secrets_on_the_detail_page(client, admin_user):
    mailbox = make_mailbox("X26ABC1", password=SECRET_PASSWORD, shared_key=SECRET_KEY)
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert SECRET_PASSWORD not in html and SECRET_KEY not in html
    assert "Password</dt><dd>Set" in html


# Create and edit


def mailbox_data(**overrides) -> dict:
    data = {
        "organisation": make_organisation().pk,
        "environment": "integration",
        "mailbox_id": "x26new1",
        "name": "Pathology",
        "base_url": "",
        "new_password": SECRET_PASSWORD,
        "new_shared_key": SECRET_KEY,
        "ca_bundle": "",
        "verify_tls": "on",
        "enabled": "on",
        "poll_interval_minutes": "5",
        "max_request_bytes": "20000000",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_it_creates_a_mailbox_with_write_only_secrets(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:create"), mailbox_data())
    mailbox = Mailbox.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("mailboxes:detail", args=[mailbox.pk])
    assert mailbox.mailbox_id == "X26NEW1"
    assert mailbox.password == SECRET_PASSWORD and mailbox.shared_key == SECRET_KEY
    assert mailbox.password_changed_at is not None and mailbox.shared_key_changed_at is not None
    sealed = " ".join(str(r.sealed_content()) for r in AuditRecord.objects.all())
    assert SECRET_PASSWORD not in sealed and SECRET_KEY not in sealed


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"mailbox_id": "bad id!"}, "mailbox_id", "3 to 20 upper-case letters and digits"),
        ({"mailbox_id": ""}, "mailbox_id", "This field is required"),
        ({"base_url": "http://mesh.example.org"}, "base_url", "use https"),
        ({"poll_interval_minutes": "4"}, "poll_interval_minutes", "at most once every 5 minutes"),
        ({"poll_interval_minutes": "1441"}, "poll_interval_minutes", "at least once a day"),
        ({"max_request_bytes": "30000000"}, "max_request_bytes", "Select a valid choice"),
        ({"environment": "moon"}, "environment", "Select a valid choice"),
    ],
)
def test_it_shows_validation_errors_by_field_and_in_a_summary(
    client, admin_user, overrides, field, message
):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:create"), mailbox_data(**overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert "There is a problem" in html
    assert f'href="#id_{field}"' in html
    assert 'aria-invalid="true"' in html
    assert SECRET_PASSWORD not in html  # a failed form does not echo the secret back
    assert not Mailbox.objects.exists()


def test_it_refuses_a_duplicate_mailbox_id(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:create"), mailbox_data(mailbox_id="X26ABC1"))
    assert response.status_code == 200
    assert "already exists" in " ".join(response.context["form"].errors["mailbox_id"])


def test_it_never_renders_secrets_back_on_the_edit_page(client, admin_user):
    mailbox = make_mailbox("X26ABC1", password=SECRET_PASSWORD, shared_key=SECRET_KEY)
    Mailbox.objects.filter(pk=mailbox.pk).update(password_changed_at=timezone.now())
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:edit", args=[mailbox.pk])).content.decode()
    assert SECRET_PASSWORD not in html and SECRET_KEY not in html
    assert "Replace password" in html and "Set, last changed" in html
    assert 'type="password" name="new_password"' in html
    assert_no_inline_code(html)


def test_it_keeps_the_secrets_when_left_blank(client, admin_user):
    mailbox = make_mailbox("X26ABC1", password=SECRET_PASSWORD, shared_key=SECRET_KEY)
    client.force_login(admin_user)
    data = mailbox_data(
        mailbox_id="X26ABC1", environment="sandbox", new_password="", new_shared_key=""
    )
    assert client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.password == SECRET_PASSWORD and mailbox.password_changed_at is None
    assert mailbox.name == "Pathology"


def test_it_replaces_a_secret_and_records_when(client, admin_user):
    mailbox = make_mailbox("X26ABC1")
    client.force_login(admin_user)
    data = mailbox_data(mailbox_id="X26ABC1", environment="sandbox", new_shared_key="")
    client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data)
    mailbox.refresh_from_db()
    assert mailbox.password == SECRET_PASSWORD and mailbox.password_changed_at is not None
    assert mailbox.shared_key_changed_at is None


def test_it_asks_for_a_reason_before_disabling_a_live_mailbox(client, admin_user):
    mailbox = make_mailbox("X26LIV1", environment=Environment.LIVE)
    client.force_login(admin_user)
    data = mailbox_data(
        mailbox_id="X26LIV1", environment="live", enabled=None, new_password="", new_shared_key=""
    )
    response = client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data)
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"disable_reason", "confirm_disable"}
    mailbox.refresh_from_db()
    assert mailbox.enabled


def test_it_disables_a_live_mailbox_with_a_reason_and_audits_it(client, admin_user):
    mailbox = make_mailbox("X26LIV1", environment=Environment.LIVE)
    client.force_login(admin_user)
    data = mailbox_data(
        mailbox_id="X26LIV1",
        environment="live",
        enabled=None,
        new_password="",
        new_shared_key="",
        disable_reason="Supplier incident INC123",
        confirm_disable="on",
    )
    response = client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data)
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert not mailbox.enabled
    record = AuditRecord.objects.get(action="mailbox.disabled")
    assert record.reason == "Supplier incident INC123"
    assert record.actor == admin_user


def test_it_disables_a_sandbox_mailbox_without_ceremony(client, admin_user, mailbox):
    client.force_login(admin_user)
    data = mailbox_data(mailbox_id="X26ABC1", environment="sandbox", enabled=None, new_password="")
    assert client.post(reverse("mailboxes:edit", args=[mailbox.pk]), data).status_code == 302
    mailbox.refresh_from_db()
    assert not mailbox.enabled


def test_it_links_to_add_an_organisation_when_there_is_none(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("mailboxes:create")).content.decode()
    assert "There are no organisations yet" in html


# Test connection and Poll now


def test_it_enqueues_a_handshake_audits_it_and_waits_for_the_result(
    client, admin_user, mailbox, task_queue
):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:handshake", args=[mailbox.pk]))
    location = urlparse(response["Location"])
    assert location.path == reverse("mailboxes:detail", args=[mailbox.pk])
    task_id = parse_qs(location.query)["task"][0]
    assert task_queue.queue_size() == 1
    assert AuditRecord.objects.filter(
        action="mailbox.handshake_requested", object_id=str(mailbox.pk)
    ).exists()

    running = client.get(response["Location"])
    assert b"Running" in running.content and b'data-refresh="2"' in running.content
    assert b"Testing the connection of X26ABC1" in running.content

    now = timezone.now()
    Task.objects.create(
        id=task_id,
        name="t",
        func="portal.mailboxes.tasks.handshake_mailbox",
        args=(mailbox.pk,),
        result="Handshake with X26ABC1 succeeded in 120 ms",
        started=now,
        stopped=now,
        success=True,
    )
    done = client.get(response["Location"]).content.decode()
    assert "Handshake with X26ABC1 succeeded in 120 ms" in done
    assert "data-refresh" not in done


def test_it_enqueues_a_poll_and_shows_a_failure(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:poll", args=[mailbox.pk]))
    task_id = parse_qs(urlparse(response["Location"]).query)["task"][0]
    assert AuditRecord.objects.filter(action="mailbox.poll_requested").exists()
    now = timezone.now()
    Task.objects.create(
        id=task_id,
        name="t",
        func="portal.messaging.tasks.poll_mailbox",
        args=(mailbox.pk,),
        result="Traceback...\nMeshTransientError: <503>",
        started=now,
        stopped=now,
        success=False,
    )
    html = client.get(response["Location"]).content.decode()
    assert "The worker stopped with an error: MeshTransientError: &lt;503&gt;" in html


def test_it_shows_no_result_of_another_mailboxs_task(client, admin_user, mailbox):
    other = make_mailbox("X26ABC2")
    now = timezone.now()
    Task.objects.create(
        id="a" * 32,
        name="t",
        func="portal.mailboxes.tasks.handshake_mailbox",
        args=(other.pk,),
        result="Handshake with X26ABC2 succeeded in 5 ms",
        started=now,
        stopped=now,
        success=True,
    )
    client.force_login(admin_user)
    html = client.get(
        reverse("mailboxes:detail", args=[mailbox.pk]), {"task": "a" * 32}
    ).content.decode()
    assert "X26ABC2 succeeded" not in html


@pytest.mark.sandbox
def test_it_tests_the_connection_against_the_sandbox(
    client, admin_user, sandbox_mailboxes, monkeypatch
):
    from django_q.tasks import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    mailbox = sandbox_mailboxes[0]
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:handshake", args=[mailbox.pk]), follow=True)
    html = response.content.decode()
    assert "Handshake with X26ABC1 succeeded in" in html
    mailbox.refresh_from_db()
    assert mailbox.last_handshake_ok is True


@pytest.mark.sandbox
def test_it_shows_a_poll_with_errors_as_a_problem_not_done(
    client, admin_user, sandbox_mailboxes, monkeypatch
):
    from django_q.tasks import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    mailbox = sandbox_mailboxes[0]
    mailbox.password = "not-the-password"
    mailbox.save()
    client.force_login(admin_user)
    html = client.post(reverse("mailboxes:poll", args=[mailbox.pk]), follow=True).content.decode()
    assert "1 error(s):" in html
    assert "Problem" in html and ">Done<" not in html


# Workflows


def test_it_adds_a_workflow_for_both_directions(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.post(
        reverse("mailboxes:workflow_add", args=[mailbox.pk]),
        {"workflow_id": "PATH_RESULTS", "direction": "both"},
    )
    assert response.status_code == 302
    directions = set(
        mailbox.workflows.filter(workflow_id="PATH_RESULTS").values_list("direction", flat=True)
    )
    assert directions == {"send", "receive"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workflow_id": "TEST_WORKFLOW", "direction": "send"}, "already registered"),
        ({"workflow_id": "bad workflow!", "direction": "send"}, "letters, digits, underscores"),
        ({"workflow_id": "OK_WF", "direction": "sideways"}, "Select a valid choice"),
    ],
)
def test_it_refuses_a_bad_workflow(client, admin_user, mailbox, data, message):
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:workflow_add", args=[mailbox.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_it_removes_a_workflow(client, admin_user, mailbox):
    workflow = mailbox.workflows.get(direction=Workflow.Direction.SEND)
    client.force_login(admin_user)
    client.post(reverse("mailboxes:workflow_remove", args=[mailbox.pk, workflow.pk]))
    assert not Workflow.objects.filter(pk=workflow.pk).exists()


def test_it_will_not_remove_another_mailboxs_workflow(client, admin_user, mailbox):
    other = make_mailbox("X26ABC2")
    workflow = other.workflows.first()
    client.force_login(admin_user)
    response = client.post(reverse("mailboxes:workflow_remove", args=[mailbox.pk, workflow.pk]))
    assert response.status_code == 404
    assert Workflow.objects.filter(pk=workflow.pk).exists()


# Organisations


def test_it_creates_an_organisation(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("mailboxes:organisation_create"), {"name": "Trust", "ods_code": "rx1"}
    )
    assert response.status_code == 302
    assert Organisation.objects.get().ods_code == "RX1"
    assert b"Trust" in client.get(reverse("mailboxes:organisations")).content


def test_it_refuses_a_bad_ods_code(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("mailboxes:organisation_create"), {"name": "Trust", "ods_code": "r-1"}
    )
    assert response.status_code == 200
    assert "An ODS code is 3 to 10" in response.content.decode()


def test_it_lists_mailboxes_in_a_constant_number_of_queries(
    client, auditor_user, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.accounts.access import make_certificate, make_message

    def populate(count: int, start: int) -> None:
        for index in range(start, start + count):
            mailbox = make_mailbox(f"X26N{index:03d}")
            make_certificate(mailbox, status="active", not_after=timezone.now())
            make_message(mailbox, payload=None)

    client.force_login(auditor_user)
    populate(3, 0)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("mailboxes:list"))
    populate(27, 100)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(reverse("mailboxes:list")).context["page"]) == 30
