from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.messaging.models import Direction, Message, MessageEvent, MessageType, Status
from tests.accounts.access import (
    PERSONAS,
    as_persona,
    assert_access,
    assert_no_inline_code,
    make_message,
)
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

VIEWERS = {"admin_user", "auditor_user", "superuser"}
SENDERS = {"admin_user", "superuser"}
XSS = "<script>alert(1)</script>"


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


@pytest.fixture
def failed_outbound(mailbox):
    return make_message(
        mailbox,
        direction=Direction.OUTBOUND,
        status=Status.FAILED,
        mesh_status_code="12",
        failure_reason="MESH code 12: The recipient mailbox is not registered with MESH.",
    )


CASES = [
    ("list", "get", lambda m: reverse("messaging:list"), VIEWERS, 200),
    ("detail", "get", lambda m: reverse("messaging:detail", args=[m.pk]), VIEWERS, 200),
    ("download", "get", lambda m: reverse("messaging:download", args=[m.pk]), SENDERS, 200),
    ("resend", "post", lambda m: reverse("messaging:resend", args=[m.pk]), SENDERS, 302),
    ("send", "get", lambda m: reverse("messaging:send"), SENDERS, 200),
    ("lookup", "get", lambda m: reverse("messaging:lookup"), SENDERS, 200),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "method", "url", "allowed", "ok"), CASES, ids=[c[0] for c in CASES]
)
def test_it_checks_access_for_every_persona(
    client, request, failed_outbound, persona, name, method, url, allowed, ok
):
    as_persona(client, request, persona)
    response = getattr(client, method)(url(failed_outbound))
    assert_access(response, persona, allowed, ok)
    if name == "download":
        response.close()


def test_it_returns_404_for_an_unknown_message(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("messaging:detail", args=[12345])).status_code == 404


# Lists


def listed(response) -> list[int]:
    return [m.pk for m in response.context["page"].items]


def test_it_lists_messages_newest_first(client, auditor_user, mailbox):
    older = make_message(mailbox, payload=None, created_at=timezone.now() - timedelta(hours=1))
    newer = make_message(mailbox, payload=None)
    client.force_login(auditor_user)
    response = client.get(reverse("messaging:list"))
    assert listed(response) == [newer.pk, older.pk]
    assert_no_inline_code(response.content.decode())


def test_it_filters_messages(client, auditor_user, mailbox):
    other = make_mailbox("X26ABC2")
    inbound = make_message(mailbox, payload=None, filename="results-2026.csv", local_id="LOCAL-1")
    outbound = make_message(
        mailbox, payload=None, direction=Direction.OUTBOUND, workflow_id="OTHER_WF"
    )
    elsewhere = make_message(other, payload=None)
    old = make_message(mailbox, payload=None, created_at=timezone.now() - timedelta(days=10))
    client.force_login(auditor_user)
    url = reverse("messaging:list")
    assert set(listed(client.get(url, {"direction": "in"}))) == {inbound.pk, elsewhere.pk, old.pk}
    assert listed(client.get(url, {"direction": "out"})) == [outbound.pk]
    assert set(listed(client.get(url, {"mailbox": other.pk}))) == {elsewhere.pk}
    assert listed(client.get(url, {"status": "accepted"})) == [outbound.pk]
    assert listed(client.get(url, {"workflow": "OTHER_WF"})) == [outbound.pk]
    assert listed(client.get(url, {"q": inbound.mesh_message_id})) == [inbound.pk]
    assert listed(client.get(url, {"q": "LOCAL-1"})) == [inbound.pk]
    assert listed(client.get(url, {"q": "results-"})) == [inbound.pk]
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert listed(client.get(url, {"date_to": week_ago})) == [old.pk]
    assert old.pk not in listed(client.get(url, {"date_from": week_ago}))


def test_it_reports_a_bad_date_range_and_keeps_the_other_filters(client, auditor_user, mailbox):
    make_message(mailbox, payload=None, direction=Direction.OUTBOUND)
    client.force_login(auditor_user)
    response = client.get(
        reverse("messaging:list"), {"date_from": "2026-02-01", "date_to": "2026-01-01"}
    )
    assert "The end date is before the start date." in response.content.decode()


def test_it_says_when_nothing_matches(client, auditor_user, mailbox):
    client.force_login(auditor_user)
    assert b"No messages yet" in client.get(reverse("messaging:list")).content
    assert (
        b"No messages match" in client.get(reverse("messaging:list"), {"direction": "in"}).content
    )


def test_it_pages_by_keyset_and_never_counts_the_whole_table(client, auditor_user, mailbox):
    start = timezone.now()
    messages = [
        make_message(mailbox, payload=None, created_at=start - timedelta(seconds=i))
        for i in range(60)
    ]
    # Two rows with the same created_at straddle a page boundary: the id breaks the tie.
    Message.objects.filter(pk__in=[messages[24].pk, messages[25].pk]).update(
        created_at=start - timedelta(seconds=24)
    )
    client.force_login(auditor_user)
    seen = []
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("messaging:list"), {"direction": "in"})
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 1001" in sql for sql in counts)  # the result count, bounded
    assert "60 messages match these filters." in response.content.decode()
    seen += listed(response)
    while response.context["page"].next_cursor:
        response = client.get(
            reverse("messaging:list"),
            {"direction": "in", "after": response.context["page"].next_cursor},
        )
        seen += listed(response)
    assert len(seen) == 60 and len(set(seen)) == 60
    back = client.get(
        reverse("messaging:list"),
        {"direction": "in", "before": response.context["page"].prev_cursor},
    )
    assert len(listed(back)) == 25
    assert b'rel="next"' in back.content and b'rel="prev"' in back.content


def test_it_shows_the_first_page_for_a_mangled_cursor(client, auditor_user, mailbox):
    make_message(mailbox, payload=None)
    client.force_login(auditor_user)
    assert len(listed(client.get(reverse("messaging:list"), {"after": "nonsense"}))) == 1


def populate(mailboxes: int, messages: int) -> None:
    boxes = [make_mailbox(f"X26P{index:03d}{mailboxes}") for index in range(mailboxes)]
    for index in range(messages):
        make_message(
            boxes[index % mailboxes],
            payload=None,
            direction=Direction.OUTBOUND if index % 2 else Direction.INBOUND,
        )


def test_it_lists_in_a_constant_number_of_queries(client, auditor_user, django_assert_num_queries):
    client.force_login(auditor_user)
    populate(3, 3)
    url = reverse("messaging:list")
    with CaptureQueriesContext(connection) as few:
        client.get(url, {"direction": "in"})
    populate(30, 30)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url, {"direction": "in"})
    assert len(listed(response)) == 17


def test_it_escapes_mesh_provided_text_in_the_list(client, auditor_user, mailbox):
    make_message(mailbox, payload=None, subject=XSS, filename=f"{XSS}.txt", sender="<b>X</b>")
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:list")).content.decode()
    assert XSS not in html and "<b>X</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# Detail


def test_it_escapes_mesh_provided_text_on_the_detail_page(client, auditor_user, mailbox):
    message = make_message(
        mailbox,
        subject=XSS,
        filename=f"{XSS}.txt",
        local_id=XSS,
        partner_id=XSS,
        mesh_status_description=XSS,
        status=Status.RECEIVED,
    )
    message.add_event(MessageEvent.Kind.DOWNLOADED, XSS)
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert_no_inline_code(html)


def test_it_shows_metadata_and_the_timeline(client, auditor_user, mailbox):
    message = make_message(mailbox, subject="Weekly results", status=Status.ACKNOWLEDGED)
    message.add_event(MessageEvent.Kind.DOWNLOADED, "12 bytes")
    message.add_event(MessageEvent.Kind.ACKNOWLEDGED)
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert "Weekly results" in html and message.mesh_message_id in html
    assert html.index("Downloaded") < html.index("Acknowledged</strong>")
    assert "Download payload" not in html  # auditors have no payload permission


def test_it_shows_chunk_progress_and_refreshes_while_sending(client, admin_user, mailbox):
    message = make_message(
        mailbox, direction=Direction.OUTBOUND, status=Status.SENDING, chunks_total=5, chunks_done=2
    )
    message.add_event(MessageEvent.Kind.CHUNK_SENT, chunk=2)
    client.force_login(admin_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert 'data-refresh="2"' in html
    assert "Chunk 2 of 5" in html and '<progress max="5" value="2">' in html
    assert "<strong>Chunk 2 of 5 uploaded</strong>" in html  # the timeline line, said once


def test_it_stops_refreshing_once_accepted(client, admin_user, mailbox):
    message = make_message(
        mailbox, direction=Direction.OUTBOUND, status=Status.ACCEPTED, chunks_total=5, chunks_done=5
    )
    client.force_login(admin_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert "data-refresh" not in html and "Chunk 5 of 5" in html


def test_it_explains_a_failure_and_links_report_and_message(
    client, admin_user, failed_outbound, mailbox
):
    report = make_message(
        mailbox,
        message_type=MessageType.REPORT,
        linked_message=failed_outbound,
        status=Status.ACKNOWLEDGED,
        linked_mesh_message_id=failed_outbound.mesh_message_id,
    )
    client.force_login(admin_user)
    html = client.get(reverse("messaging:detail", args=[failed_outbound.pk])).content.decode()
    assert "The recipient mailbox is not registered with MESH." in html
    assert "MESH code 12" in html
    assert reverse("messaging:detail", args=[report.pk]) in html
    assert "Resend" in html
    report_html = client.get(reverse("messaging:detail", args=[report.pk])).content.decode()
    assert "This report concerns" in report_html
    assert reverse("messaging:detail", args=[failed_outbound.pk]) in report_html


def test_it_explains_a_failure_from_the_code_alone(client, admin_user, mailbox):
    message = make_message(
        mailbox, direction=Direction.OUTBOUND, status=Status.FAILED, mesh_status_code="14"
    )
    client.force_login(admin_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert "did not collect the message within 5 days" in html


# Payload download


def test_it_streams_the_payload_as_an_attachment_and_audits_it(client, admin_user, mailbox):
    message = make_message(mailbox, payload=b"the,csv,data\n", filename="../../etc/passwd")
    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[message.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"the,csv,data\n"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="passwd"'
    record = AuditRecord.objects.get(action="message.payload_downloaded")
    assert record.actor == admin_user and record.object_id == str(message.pk)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ('evil"; filename=x.exe\r\n.txt', "evil__ filename_x.exe__.txt"),
        ("..", None),
        ("C:\\Windows\\system.ini", "system.ini"),
        ("résumé.pdf", "r_sum_.pdf"),
    ],
)
def test_it_makes_a_safe_download_filename(client, admin_user, mailbox, filename, expected):
    message = make_message(mailbox, filename=filename)
    client.force_login(admin_user)
    response = client.get(reverse("messaging:download", args=[message.pk]))
    response.close()
    name = expected or f"message-{message.pk}.dat"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'


def test_it_returns_404_when_there_is_no_payload(client, admin_user, mailbox):
    message = make_message(mailbox, payload=None)
    client.force_login(admin_user)
    assert client.get(reverse("messaging:download", args=[message.pk])).status_code == 404
    assert not AuditRecord.objects.filter(action="message.payload_downloaded").exists()


# Resend


def test_it_resends_a_failed_outbound_message(client, admin_user, failed_outbound):
    client.force_login(admin_user)
    response = client.post(reverse("messaging:resend", args=[failed_outbound.pk]))
    assert response["Location"] == reverse("messaging:detail", args=[failed_outbound.pk])
    failed_outbound.refresh_from_db()
    assert failed_outbound.status == Status.QUEUED
    assert failed_outbound.events.filter(kind=MessageEvent.Kind.RESENT, actor=admin_user).exists()
    assert AuditRecord.objects.filter(action="message.resend").exists()


def test_it_refuses_to_resend_an_accepted_message(client, admin_user, mailbox):
    message = make_message(mailbox, direction=Direction.OUTBOUND, status=Status.ACCEPTED)
    client.force_login(admin_user)
    response = client.post(reverse("messaging:resend", args=[message.pk]), follow=True)
    assert "Only a failed outbound message" in response.content.decode()
    message.refresh_from_db()
    assert message.status == Status.ACCEPTED


# Send


def upload(content: bytes = b"hello MESH", name: str = "hello.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/plain")


def send_data(**overrides) -> dict:
    data = {
        "mailbox": "X26ABC1",
        "recipient": "x26abc2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "Hi",
        "local_id": "",
        "file": upload(),
    }
    data.update(overrides)
    return data


def test_it_queues_a_send_and_shows_its_progress(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.post(reverse("messaging:send"), send_data())
    message = Message.objects.get()
    assert response["Location"] == reverse("messaging:detail", args=[message.pk])
    assert (message.status, message.recipient, message.filename, message.created_by) == (
        Status.QUEUED,
        "X26ABC2",
        "hello.txt",
        admin_user,
    )
    with message.payload.open("rb") as handle:
        assert handle.read() == b"hello MESH"
    page = client.get(response["Location"]).content.decode()
    assert "Queued for X26ABC2" in page and 'data-refresh="2"' in page


def test_it_offers_only_enabled_mailboxes_and_their_send_workflows(client, admin_user, mailbox):
    make_mailbox("X26OFF1", enabled=False, workflows=("OFF_WF",))
    make_mailbox("X26ABC2", workflows=("OTHER_WF",))
    client.force_login(admin_user)
    response = client.get(reverse("messaging:send"), {"mailbox": "X26ABC1", "recipient": "X26ABC2"})
    html = response.content.decode()
    assert '<option value="X26ABC1" selected>' in html
    assert "X26OFF1" not in html and "OFF_WF" not in html
    assert '<optgroup label="X26ABC2">' in html
    assert 'value="X26ABC2"' in html and 'data-workflows-for="id_mailbox"' in html
    assert_no_inline_code(html)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"recipient": "not a mailbox"}, "recipient", "A MESH mailbox id is 3 to 20"),
        ({"file": upload(b"")}, "file", "The submitted file is empty."),
        ({"file": ""}, "file", "This field is required."),
        (
            {"workflow_id": "OTHER_WF"},
            "workflow_id",
            "OTHER_WF is not registered for sending from X26ABC1",
        ),
        ({"workflow_id": "NOT_A_CHOICE"}, "workflow_id", "Select a valid choice"),
        ({"mailbox": "X26OFF1"}, "mailbox", "Select a valid choice"),
    ],
)
def test_it_refuses_a_bad_send(client, admin_user, mailbox, overrides, field, message):
    make_mailbox("X26ABC2", workflows=("OTHER_WF",))
    make_mailbox("X26OFF1", enabled=False)
    client.force_login(admin_user)
    response = client.post(reverse("messaging:send"), send_data(**overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert "There is a problem" in response.content.decode()
    assert not Message.objects.exists()


def test_it_says_why_and_what_to_do_when_the_mailbox_has_no_send_workflows(client, admin_user):
    bare = make_mailbox("X26NOW1", workflows=())
    client.force_login(admin_user)
    response = client.post(reverse("messaging:send"), send_data(mailbox="X26NOW1", workflow_id=""))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This field is required" not in html
    assert "X26NOW1 has no workflow registered for sending" in html
    detail = reverse("mailboxes:detail", args=[bare.pk])
    assert f'<a href="{detail}#workflows">Add a send workflow on its mailbox page</a>' in html
    summary = html.split('class="error-summary"')[1].split("</div>")[0]
    assert summary.count("<a ") == 1, "one link to the field, no link inside a link"
    assert not Message.objects.exists()


def test_it_refuses_a_file_over_the_mesh_limit(client, admin_user, mailbox, settings):
    settings.MESH_MAX_UPLOAD_BYTES = 5
    client.force_login(admin_user)
    response = client.post(reverse("messaging:send"), send_data())
    assert "larger than" in " ".join(response.context["form"].errors["file"])


def test_it_shows_a_service_rejection_on_the_form(client, admin_user, mailbox, monkeypatch):
    from portal.messaging import views

    def reject(**kwargs):
        raise views.SendRejected(
            "Workflow TEST_WORKFLOW is not registered for sending from X26ABC1.",
            field="workflow_id",
        )

    monkeypatch.setattr(views, "message_queue_send", reject)
    client.force_login(admin_user)
    response = client.post(reverse("messaging:send"), send_data())
    assert "is not registered" in " ".join(response.context["form"].errors["workflow_id"])


# Recipient lookup


def test_it_explains_a_lookup_that_cannot_run(client, admin_user):
    make_mailbox("X26ABC1", password="")
    client.force_login(admin_user)
    response = client.get(
        reverse("messaging:lookup"),
        {"mailbox": "X26ABC1", "ods": "X26", "workflow": "TEST_WORKFLOW"},
    )
    assert (
        "The MESH lookup did not work: X26ABC1 has no password or shared key set."
        in response.content.decode()
    )


def test_it_validates_the_lookup_form(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.get(
        reverse("messaging:lookup"), {"mailbox": "X26ABC1", "ods": "x 2", "workflow": "WF"}
    )
    assert "An ODS code is 3 to 10" in response.content.decode()


@pytest.mark.sandbox
def test_it_looks_up_a_recipient_in_mesh(client, admin_user, sandbox_mailboxes):
    client.force_login(admin_user)
    url = reverse("messaging:lookup")
    response = client.get(url, {"mailbox": "X26ABC1", "ods": "x26", "workflow": "TEST_WORKFLOW"})
    html = response.content.decode()
    assert [item.mailbox_id for item in response.context["results"]] == ["X26ABC2"]
    assert "TESTMB2" in html
    assert (
        f"{reverse('messaging:send')}?mailbox=X26ABC1&amp;recipient=X26ABC2&amp;workflow=TEST_WORKFLOW"
        in html
    )
    nobody = client.get(url, {"mailbox": "X26ABC1", "ods": "X27", "workflow": "TEST_WORKFLOW"})
    assert b"MESH knows no mailbox" in nobody.content


def test_it_prefers_an_exact_id_to_a_filename_prefix(client, auditor_user, mailbox):
    by_id = make_message(mailbox, payload=None, local_id="INV-7")
    make_message(mailbox, payload=None, filename="INV-7-summary.csv")
    client.force_login(auditor_user)
    assert listed(client.get(reverse("messaging:list"), {"q": "INV-7"})) == [by_id.pk]
    assert len(listed(client.get(reverse("messaging:list"), {"q": "INV-"}))) == 1


def test_it_links_the_send_page_to_the_lookup_with_the_mailbox_chosen(client, admin_user, mailbox):
    client.force_login(admin_user)
    send = client.get(reverse("messaging:send"), {"mailbox": "X26ABC1"}).content.decode()
    assert f'href="{reverse("messaging:lookup")}?mailbox=X26ABC1"' in send
    lookup = client.get(reverse("messaging:lookup"), {"mailbox": "X26ABC1"}).content.decode()
    assert "There is a problem" not in lookup
    assert '<option value="X26ABC1" selected>' in lookup
