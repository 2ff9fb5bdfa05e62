"""The whole suite against the real mesh-sandbox, as the worker runs it: every scenario passes."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest

import meshcore
from meshcore.auth import build_token
from portal.audit.models import AuditRecord
from portal.conformance import tasks
from portal.conformance.evidence import evidence_zip, run_document
from portal.conformance.models import ConformanceRun, Outcome, RunStatus
from portal.conformance.scenarios import SCENARIOS
from portal.conformance.services import run_create
from portal.mailboxes.models import Mailbox
from portal.messaging.models import Message
from tests.sandbox import PASSWORD, SHARED_KEY

from .conftest import execute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sandbox]
# A full token: the scheme and mailbox id followed by anything but the redaction (raw or escaped).
TOKEN = re.compile(r"NHSMESH\s+[A-Za-z0-9]+:(?!<redacted>|&lt;redacted&gt;|\\u003credacted)")
# What delimits a value in JSON, HTTP headers, the token's fields, HTML and query strings. "password"
# also appears in prose ("a wrong password", the key wrong_password): only a whole value counts.
VALUE_EDGE = re.compile(r"\s*(?:[\"'`:=&<>,;{}\[\]()\\/]\s*)+")


def leaks(text: str) -> list[str]:
    """The secrets found in a piece of stored text."""
    found = []
    if SHARED_KEY in text:
        found.append("the shared key")
    if PASSWORD in VALUE_EDGE.split(text):
        found.append("the mailbox password")
    if TOKEN.search(text):
        found.append("an Authorization token")
    return found


def stored_texts(run: ConformanceRun) -> dict[str, str]:
    """Everything NeoMesh keeps about a run: its rows, its audit records, the pack and its files."""
    pack = evidence_zip(run)
    archive = zipfile.ZipFile(io.BytesIO(pack))
    rows = {
        "run row": ConformanceRun.objects.filter(pk=run.pk).values(),
        "result rows": run.results.values(),
        "audit records": AuditRecord.objects.for_object(run).values(),
    }
    texts = {name: json.dumps(list(query), default=str) for name, query in rows.items()}
    texts["run document"] = json.dumps(run_document(run))
    texts["evidence zip (raw bytes)"] = pack.decode("latin-1")
    for name in archive.namelist():
        texts[f"evidence zip: {name}"] = archive.read(name).decode()
    return texts


def assert_no_secrets(run: ConformanceRun) -> None:
    """The stored log never holds a password, a shared key or an Authorization token."""
    found = {place: leaks(text) for place, text in stored_texts(run).items() if leaks(text)}
    assert not found, f"secrets stored: {found}"
    for result in run.results.all():
        for exchange in result.exchanges:
            for name, value in exchange["request_headers"].items():
                if name.lower() == "authorization":
                    assert value == f"NHSMESH {exchange['mailbox']}:<redacted>"


LEAKS = {
    "a whole token": lambda: {
        "request_headers": {
            "Authorization": build_token(
                "X26ABC1", PASSWORD, SHARED_KEY.encode(), nonce="4f2b", timestamp="202601011200"
            )
        }
    },
    "the password as a header": lambda: {"request_headers": {"mex-Password": PASSWORD}},
    "the token's signed fields": lambda: {"error": f"X26ABC1:4f2b:0:{PASSWORD}:202601011200"},
    "the shared key in a query": lambda: {"query": f"key={SHARED_KEY}"},
}


@pytest.mark.parametrize("leak", LEAKS)
def test_the_secret_check_would_catch_a_leak(sandbox_mailboxes, leak):
    run = run_create(mailbox=sandbox_mailboxes[0], peer=sandbox_mailboxes[1], enqueue=False)
    ConformanceRun.objects.filter(pk=run.pk).update(status=RunStatus.PASSED)
    # Every scenario's title and summary (with "wrong password" in prose) is in a clean pack.
    assert_no_secrets(run)
    exchange = {
        "mailbox": "X26ABC1",
        "method": "GET",
        "path": "/messageexchange/X26ABC1",
        "status": 200,
        "request_headers": {},
        **LEAKS[leak](),
    }
    run.results.filter(key="handshake").update(exchanges=[exchange], exchanges_total=1)
    with pytest.raises(AssertionError, match="secrets stored"):
        assert_no_secrets(run)
    places = {place for place, text in stored_texts(run).items() if leaks(text)}
    assert {"result rows", "run document", "evidence zip: run.json"} <= places


def test_it_runs_the_whole_suite_against_the_sandbox_with_600_messages(sandbox_mailboxes, capsys):
    mailbox, peer = sandbox_mailboxes
    run = run_create(mailbox=mailbox, peer=peer, enqueue=False)
    began = time.monotonic()
    summary = tasks.run_suite(run.pk)  # what the worker runs
    elapsed = time.monotonic() - began
    run.refresh_from_db()
    results = {r.key: r for r in run.results.all()}
    with capsys.disabled():
        print(f"\nWhole suite against the sandbox: {elapsed:.1f} s")
        for r in results.values():
            print(f"  {r.ref or '-':<8} {r.key:<22} {r.duration_ms / 1000:6.2f} s  {r.outcome}")
        print(f"  high volume: {results['high_volume'].measurements}")
    assert run.status == RunStatus.PASSED, summary
    assert list(results) == list(SCENARIOS)
    failing = {k: r.reason for k, r in results.items() if r.outcome != Outcome.PASSED}
    assert not failing
    assert run.summary == "15 passed" and run.finished_at and run.started_at
    assert run.cleanup.startswith("Nothing left to clean up")

    handshake = results["handshake"].exchanges[0]
    for name in ("mex-ClientVersion", "mex-OSName", "mex-OSVersion"):
        assert handshake["request_headers"][name]
    volume = results["high_volume"]
    assert volume.measurements["messages"] == 600 and len(volume.message_ids) == 600
    assert volume.measurements["pages_followed"] >= 1
    assert volume.exchanges_total > 1800 and len(volume.exchanges) < 300, "a sample is kept"
    chunked = results["receive_chunked"]
    assert chunked.measurements["chunks"] == 3
    sent, received = chunked.payloads
    assert sent["sha256"] == received["sha256"] and sent["size"] == received["size"]
    report = results["non_delivery_report"]
    assert len(report.message_ids) == 2 and report.measurements["report_status_code"] == "14"
    assert any(e["path"] == "/messageexchange/admin/report" for e in report.exchanges)
    assert results["after_acknowledgement"].measurements["answer"] == "HTTP 200"
    assert results["unknown_recipient"].measurements["answer"] == "HTTP 417, MESH code SEND/12"
    assert results["wrong_password"].measurements["answer"].startswith("HTTP 403")
    single = results["single_request"].measurements
    assert single["limit_bytes"] == 100_000 and single["random_requests"] == ["1:3", "2:3", "3:3"]
    assert len(results["business_ack"].message_ids) == 2
    assert_no_secrets(run)

    # Cleaned up: both inboxes empty, no rows in the message log, the poll claims released.
    for box in (mailbox, peer):
        with meshcore.MeshClient(
            sandbox_mailboxes[0].effective_base_url(), box.mailbox_id, PASSWORD, SHARED_KEY
        ) as client:
            assert list(client.iter_inbox()) == []
    assert not Message.objects.exists()
    assert not Mailbox.objects.filter(poll_claimed_at__isnull=False).exists()
    actions = list(
        AuditRecord.objects.filter(object_type="conformance.conformancerun")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["conformance.run_started", "conformance.run_finished"]


def test_it_never_stores_the_wrong_password_it_tries(sandbox_mailboxes, monkeypatch):
    from portal.conformance.scenarios import errors

    monkeypatch.setattr(errors, "wrong_password", lambda: "Wr0ng-Pa55word-for-the-test")
    run = execute(*sandbox_mailboxes, "wrong_password", "handshake")
    assert run.status == RunStatus.PASSED
    stored = json.dumps(run_document(run))
    assert "Wr0ng-Pa55word-for-the-test" not in stored
    archive = zipfile.ZipFile(io.BytesIO(evidence_zip(run)))
    for name in archive.namelist():
        assert b"Wr0ng-Pa55word-for-the-test" not in archive.read(name)
    assert_no_secrets(run)


def test_a_failing_scenario_fails_the_run_and_the_others_still_run(sandbox_mailboxes):
    # The peer does not receive TEST_WORKFLOW_ACK in the sandbox's directory: lookup must fail.
    run = execute(
        *sandbox_mailboxes, "endpoint_lookup", "missing_message", workflow_id="TEST_WORKFLOW_ACK"
    )
    missing, lookup = run.results.all()  # in the order of the case list, not of the arguments
    assert run.status == RunStatus.FAILED and run.summary == "1 passed, 1 failed"
    assert lookup.outcome == Outcome.FAILED and "not X26ABC2" in lookup.reason
    assert missing.outcome == Outcome.PASSED
    finished = AuditRecord.objects.get(action="conformance.run_finished")
    assert finished.detail.startswith("Failed: 1 passed, 1 failed")


def test_the_report_is_not_applicable_on_integration_and_the_run_still_passes(sandbox, settings):
    from tests.factories import make_mailbox

    # Integration mailboxes pointed at the sandbox: the 5-day wait cannot be faked there. Outside
    # the sandbox only NHS England's hosts are reached, unless the operator allows another.
    settings.MESH_ALLOWED_BASE_URLS = [sandbox.url]
    mailbox = make_mailbox("X26ABC1", environment="integration", base_url=sandbox.url)
    peer = make_mailbox("X26ABC2", environment="integration", base_url=sandbox.url)
    run = execute(mailbox, peer, "non_delivery_report", "missing_message")
    report = run.results.get(key="non_delivery_report")
    assert report.outcome == Outcome.NOT_APPLICABLE
    assert report.reason.startswith("Not applicable here: needs 5 days")
    assert not report.message_ids, "nothing was sent"
    assert run.status == RunStatus.PASSED and run.summary == "1 passed, 1 not applicable"
