"""Conformance pages: access per persona for every URL, the start form, progress and the pack."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.conformance.models import ConformanceRun, Outcome, RunStatus
from portal.conformance.services import run_create
from tests.accounts.access import PERSONAS, as_persona, assert_access, assert_no_inline_code
from tests.factories import make_mailbox
from tests.onboarding.helpers import make_plan, task

pytestmark = pytest.mark.django_db
VIEW = {"admin_user", "lead_user", "auditor_user", "superuser"}
RUN = {"admin_user", "lead_user", "superuser"}


@pytest.fixture
def pair():
    return make_mailbox("X26ABC1"), make_mailbox("X26ABC2")


@pytest.fixture
def finished(pair):
    """A finished run, as a worker leaves it (no MESH needed to look at it)."""
    run = run_create(mailbox=pair[0], peer=pair[1], enqueue=False)
    run.results.update(outcome=Outcome.PASSED, reason="Fine.", duration_ms=12)
    run.results.filter(key="handshake").update(
        exchanges=[
            {
                "seq": 1,
                "mailbox": "X26ABC1",
                "method": "POST",
                "path": "/messageexchange/X26ABC1",
                "query": "",
                "status": 200,
                "error": "",
                "elapsed_ms": 3.2,
                "request_headers": {
                    "Authorization": "NHSMESH X26ABC1:<redacted>",
                    "mex-ClientVersion": "NeoMesh;meshcore==0.1.0",
                },
                "response_headers": {"Content-Length": "0"},
            }
        ],
        exchanges_total=1,
        message_ids=["ABC"],
    )
    ConformanceRun.objects.filter(pk=run.pk).update(
        status=RunStatus.PASSED, summary="13 passed", finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


URLS = [
    ("list", "get", lambda r: reverse("conformance:list"), VIEW, 200),
    ("new", "get", lambda r: reverse("conformance:new"), RUN, 200),
    ("new_post", "post", lambda r: reverse("conformance:new"), RUN, 400),
    ("detail", "get", lambda r: reverse("conformance:detail", args=[r.pk]), VIEW, 200),
    ("report", "get", lambda r: reverse("conformance:report", args=[r.pk]), VIEW, 200),
    ("evidence", "get", lambda r: reverse("conformance:evidence", args=[r.pk]), VIEW, 200),
]


@pytest.mark.parametrize(("name", "method", "url", "allowed", "ok"), URLS, ids=[u[0] for u in URLS])
def test_it_checks_access_for_every_persona(
    client, request, finished, name, method, url, allowed, ok
):
    for persona in PERSONAS:
        if persona != "anonymous":
            request.getfixturevalue(persona)
        with transaction.atomic():
            as_persona(client, request, persona)
            response = getattr(client, method)(url(finished), {})
            try:
                assert_access(response, persona, allowed, ok)
            except AssertionError as exc:
                raise AssertionError(f"{name} as {persona}: {exc}") from None
            if persona in allowed and response["Content-Type"].startswith("text/html"):
                assert_no_inline_code(response.content.decode())
            transaction.set_rollback(True)


def test_the_navigation_offers_conformance_to_those_who_may_view_it(
    client, admin_user, lead_user, auditor_user, outsider_user
):
    link = f'href="{reverse("conformance:list")}"'
    for user in (admin_user, lead_user, auditor_user):
        client.force_login(user)
        assert link in client.get(reverse("conformance:list")).content.decode()
    client.force_login(outsider_user)
    assert link not in client.get(reverse("accounts:login"), follow=True).content.decode()


def test_it_starts_a_run_from_the_form_audits_it_and_queues_it(
    client, lead_user, pair, django_capture_on_commit_callbacks, task_queue
):
    client.force_login(lead_user)
    data = {"mailbox": "X26ABC1", "peer": "X26ABC2", "scenarios": ["handshake", "lookup_missing"]}
    response = client.post(reverse("conformance:new"), data)
    assert response.status_code == 400, "an unknown scenario is refused"
    data["scenarios"] = ["handshake", "endpoint_lookup"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("conformance:new"), data)
    run = ConformanceRun.objects.get()
    assert response["Location"] == reverse("conformance:detail", args=[run.pk])
    assert run.status == RunStatus.QUEUED and run.started_by == lead_user
    assert list(run.results.values_list("key", flat=True)) == ["handshake", "endpoint_lookup"]
    assert run.workflow_id == run.reply_workflow_id == "TEST_WORKFLOW"
    assert task_queue.queue_size() == 1
    entry = AuditRecord.objects.get(action="conformance.run_started")
    assert entry.actor == lead_user and "X26ABC1 with peer X26ABC2" in entry.detail

    page = client.get(response["Location"]).content.decode()
    assert 'data-refresh="2"' in page and "Scenario 0 of 2" in page
    assert "evidence.zip" not in page, "no pack before the run has finished"
    assert client.get(reverse("conformance:evidence", args=[run.pk])).status_code == 404


def test_it_refuses_the_same_mailbox_twice_and_mixed_environments(client, admin_user, pair):
    make_mailbox("X26INT01", environment="integration")
    client.force_login(admin_user)
    same = client.post(
        reverse("conformance:new"),
        {"mailbox": "X26ABC1", "peer": "X26ABC1", "scenarios": ["handshake"]},
    )
    assert "Choose a different peer" in same.content.decode()
    mixed = client.post(
        reverse("conformance:new"),
        {"mailbox": "X26ABC1", "peer": "X26INT01", "scenarios": ["handshake"]},
    )
    assert "both must be in the same environment" in mixed.content.decode()
    assert not ConformanceRun.objects.exists()


def test_only_mailbox_admins_may_allow_a_live_run(client, admin_user, lead_user):
    make_mailbox("X26LIVE1", environment="live")
    make_mailbox("X26LIVE2", environment="live")
    data = {"mailbox": "X26LIVE1", "peer": "X26LIVE2", "scenarios": ["handshake"]}
    client.force_login(lead_user)
    assert (
        "Allow a run on a LIVE mailbox"
        not in client.get(reverse("conformance:new")).content.decode()
    )
    refused = client.post(reverse("conformance:new"), {**data, "allow_live": "on"})
    assert refused.status_code == 400 and "is a LIVE mailbox" in refused.content.decode()
    client.force_login(admin_user)
    assert (
        "Allow a run on a LIVE mailbox" in client.get(reverse("conformance:new")).content.decode()
    )
    allowed = client.post(reverse("conformance:new"), {**data, "allow_live": "on"})
    # Explicitly allowed, the run is still held by the live readiness gate (no plan, no certificate).
    assert allowed.status_code == 400 and "no live onboarding plan" in allowed.content.decode()
    assert not ConformanceRun.objects.exists()


def test_an_onboarding_task_link_prefills_the_form(client, lead_user, admin_user):
    plan = make_plan("mesh-api", live=False)
    rehearse = task(plan, "rehearse")
    make_mailbox("X26INT02", environment="integration")
    client.force_login(lead_user)
    html = client.get(reverse("conformance:new"), {"task": rehearse.pk}).content.decode()
    assert f'<option value="{rehearse.pk}" selected>' in html
    assert '<option value="X26INT01" selected>' in html, "the plan's integration mailbox"
    client.force_login(admin_user)
    html = client.get(reverse("conformance:new"), {"task": rehearse.pk}).content.decode()
    assert "Attach the evidence pack" not in html, "admins may not add onboarding evidence"


def test_the_finished_run_offers_a_printable_report_and_an_audited_zip(
    client, auditor_user, finished
):
    client.force_login(auditor_user)
    page = client.get(reverse("conformance:detail", args=[finished.pk])).content.decode()
    assert "data-refresh" not in page and "13 passed" in page
    assert reverse("conformance:evidence", args=[finished.pk]) in page

    report = client.get(reverse("conformance:report", args=[finished.pk])).content.decode()
    assert report.count('class="report-section print-break scenario"') == 15
    assert "NHSMESH X26ABC1:&lt;redacted&gt;" in report and "mex-ClientVersion" in report

    response = client.get(reverse("conformance:evidence", args=[finished.pk]))
    assert response["Content-Type"] == "application/zip"
    assert f"neomesh-conformance-{finished.pk}-X26ABC1-" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["report.html", "run.json"]
    document = json.loads(archive.read("run.json"))
    assert document["run"]["id"] == finished.pk and len(document["scenarios"]) == 15
    standalone = archive.read("report.html").decode()
    assert standalone.startswith("<!doctype html>") and "<style>" in standalone
    assert "<script" not in standalone and 'href="/' not in standalone, "opens from disk"
    entry = AuditRecord.objects.get(action="conformance.evidence_downloaded")
    assert entry.actor == auditor_user and "sha256" in entry.detail
