"""The audit trail's CSV export: streamed in batches, filtered like the page, audited, formula-safe."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.lib import csv_export as exports
from tests.csv_exports import EVIL, last_export, read_csv
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


# Audit trail


def test_it_exports_the_filtered_trail_with_masked_changes_and_audits_it(
    client, auditor_user, mailbox
):
    mailbox.password = "the-real-password"
    mailbox.save()
    record(
        action="message.payload_downloaded", actor=Actor(kind="person", label="bob"), detail=EVIL
    )
    client.force_login(auditor_user)
    response = client.get(reverse("audit:export"), {"object_type": "mailboxes.mailbox"})
    assert response["Content-Disposition"].startswith('attachment; filename="neomesh-audit-trail-')
    rows = read_csv(response)
    assert [row["Action"] for row in rows] == ["mailbox.update", "mailbox.create"]
    assert "the-real-password" not in str(rows) and "secret" in rows[0]["Changes"]
    assert int(rows[0]["Seq"]) > int(rows[1]["Seq"]) and len(rows[0]["Hash"]) == 64
    entry = last_export()
    assert entry.action == "audit.trail_exported" and entry.actor == auditor_user
    assert entry.detail.startswith("2 audit records up to #")
    assert entry.detail.endswith("filters: object_type=mailboxes.mailbox")
    everything = read_csv(client.get(reverse("audit:export"), {"actor": "bob"}))
    assert everything[0]["Detail"] == "'" + EVIL


def test_the_trail_export_stops_at_the_records_sealed_when_it_began(client, auditor_user):
    client.force_login(auditor_user)
    before = AuditRecord.objects.order_by("-seq").first().seq
    rows = read_csv(client.get(reverse("audit:export")))
    assert int(rows[0]["Seq"]) == before  # its own record is sealed after the snapshot
    assert last_export().seq == before + 1


def test_the_trail_export_reads_in_batches(client, auditor_user, monkeypatch):
    monkeypatch.setattr(exports, "FIRST_BATCH", 2)
    monkeypatch.setattr(exports, "BATCH", 3)
    for i in range(10):
        record(action="test.event", actor=Actor(kind="system", label="tester"), detail=str(i))
    client.force_login(auditor_user)
    rows = read_csv(client.get(reverse("audit:export"), {"action": "test.event"}))
    assert [row["Detail"] for row in rows] == [str(i) for i in reversed(range(10))]


def test_the_trail_links_to_its_export_with_its_filters(client, auditor_user):
    client.force_login(auditor_user)
    html = client.get(reverse("audit:trail"), {"actor": "bob", "after": "5"}).content.decode()
    assert f'href="{reverse("audit:export")}?actor=bob"' in html


def test_it_counts_an_exports_rows_only_up_to_a_bound(client, auditor_user, monkeypatch):
    monkeypatch.setattr(exports, "COUNT_LIMIT", 3)
    for n in range(5):
        record(action="message.payload_downloaded", actor=Actor(kind="person", label=f"bob{n}"))
    client.force_login(auditor_user)
    rows = read_csv(client.get(reverse("audit:export"), {"action": "message.payload_downloaded"}))
    assert len(rows) == 5  # every row is exported; only the audit record's count is bounded
    assert last_export().detail.startswith("more than 3 audit records up to #")
    rows = read_csv(client.get(reverse("audit:export"), {"actor": "bob1"}))
    assert len(rows) == 1 and last_export().detail.startswith("1 audit records up to #")
