"""The message log's CSV export: streamed in batches, filtered like the page, audited, formula-safe."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from portal.lib import csv_export as exports
from portal.mailboxes.models import Environment
from portal.messaging.models import Direction, Status
from tests.accounts.access import make_message
from tests.csv_exports import EVIL, last_export, read_csv
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


def test_it_exports_the_filtered_message_log_and_audits_it(client, auditor_user, mailbox):
    live = make_mailbox("X26LIV1", environment=Environment.LIVE)
    wanted = make_message(live, payload=None, subject="Weekly results", local_id="REF-1")
    make_message(mailbox, payload=None)
    make_message(live, payload=None, direction=Direction.OUTBOUND, status=Status.FAILED)
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:export"), {"environment": "live", "direction": "in"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="neomesh-message-log-')
    rows = read_csv(response)
    assert [row["NeoMesh id"] for row in rows] == [str(wanted.pk)]
    row = rows[0]
    assert (
        row["Mailbox"],
        row["Environment"],
        row["Direction"],
        row["Subject"],
        row["Local id"],
    ) == (
        "X26LIV1",
        "LIVE",
        "in",
        "Weekly results",
        "REF-1",
    )
    assert row["MESH message id"] == wanted.mesh_message_id
    entry = last_export()
    assert (entry.action, entry.actor, entry.ip_address) == (
        "audit.message_log_exported",
        auditor_user,
        "127.0.0.1",
    )
    assert entry.detail == "1 messages; filters: environment=live, direction=in"


def test_it_never_exports_payload_content(client, auditor_user, mailbox):
    make_message(mailbox, payload=b"PATIENT DATA 9434765919")
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:export"))
    text = b"".join(response.streaming_content).decode()
    assert "9434765919" not in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", EVIL),
        ("subject", "+44 20 7946 0000"),
        ("subject", "-2+3+cmd|' /C calc'!A0"),
        ("subject", "@SUM(1+1)*cmd|' /C calc'!A0"),
        ("subject", "\t=1+1"),
        ("subject", "\r=1+1"),
        ("filename", "=cmd|' /C notepad'!A1.csv"),
        ("local_id", "=1+1"),
        ("sender", "@X26"),
        # Spreadsheets that split on ';' or tabs start a new cell after the separator.
        ("subject", "Results;=1+1"),
        ("subject", 'Results; =HYPERLINK("http://evil.example")'),
        ("filename", "a,+1.csv"),
        ("local_id", "ref\t-2+3"),
        ("sender", "X26;@SUM(1)"),
    ],
)
def test_it_neutralises_spreadsheet_formulas_in_the_message_log(
    client, auditor_user, mailbox, field, value
):
    make_message(mailbox, payload=None, **{field: value})
    client.force_login(auditor_user)
    rows = read_csv(client.get(reverse("messaging:export")))
    column = {
        "subject": "Subject",
        "filename": "Filename",
        "local_id": "Local id",
        "sender": "Sender",
    }
    assert rows[0][column[field]] == "'" + value


def test_it_leaves_harmless_text_and_numbers_alone(client, auditor_user, mailbox):
    make_message(mailbox, payload=b"12345", subject="Results = good", filename="a-b.csv")
    client.force_login(auditor_user)
    row = read_csv(client.get(reverse("messaging:export")))[0]
    assert (row["Subject"], row["Filename"], row["Size (bytes)"]) == (
        "Results = good",
        "a-b.csv",
        "5",
    )


def test_it_streams_every_row_once_across_batches(client, auditor_user, mailbox, monkeypatch):
    monkeypatch.setattr(exports, "FIRST_BATCH", 2)
    monkeypatch.setattr(exports, "BATCH", 3)
    made = [make_message(mailbox, payload=None) for _ in range(11)]
    # Two rows share a created_at: the id breaks the tie across a batch boundary.
    type(made[0]).objects.filter(pk=made[4].pk).update(created_at=made[5].created_at)
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:export"))
    chunks = list(response.streaming_content)
    assert len(chunks) > 3  # written in blocks as it goes, not at the end
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode()[1:])))
    ids = [int(row["NeoMesh id"]) for row in rows]
    assert sorted(ids) == sorted(m.pk for m in made) and len(ids) == len(set(ids))


def test_it_refuses_to_export_with_invalid_filters(client, auditor_user, mailbox):
    client.force_login(auditor_user)
    query = {"date_from": "2026-02-01", "date_to": "2026-01-01"}
    response = client.get(reverse("messaging:export"), query)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("messaging:list") + "?")
    page = client.get(response["Location"])
    assert "Correct the filters before exporting." in page.content.decode()
    assert "The end date is before the start date." in page.content.decode()
    assert last_export() is None


def test_the_message_list_links_to_the_export_with_its_filters(
    client, auditor_user, admin_user, mailbox
):
    client.force_login(auditor_user)
    html = client.get(
        reverse("messaging:list"), {"direction": "in", "status": "received"}
    ).content.decode()
    assert f'href="{reverse("messaging:export")}?direction=in&amp;status=received"' in html
    client.force_login(admin_user)  # no export permission: no link
    assert reverse("messaging:export") not in client.get(reverse("messaging:list")).content.decode()
