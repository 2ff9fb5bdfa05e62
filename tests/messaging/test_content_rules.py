"""What a send may carry: no patient-identifiable data in the local id or subject, the encrypted
and compressed flags, and demographic addressing for workflows marked for it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal.audit.actors import Actor
from portal.audit.models import AuditRecord
from portal.mailboxes.models import Workflow
from portal.messaging import outbox
from portal.messaging.models import Message, Status
from portal.messaging.pid import findings
from portal.messaging.services import SendRejected
from tests.factories import make_mailbox
from tests.peers.proxy import RecordingProxy

from .helpers import queue

RULE = "must not contain patient identifiable data"
VALID_NHS = "9434765919"  # the check digit is right
WRONG_CHECK = "9434765918"


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (VALID_NHS, ["an NHS number (943 *** ****)"]),
        ("batch 943 476 5919", ["an NHS number (943 *** ****)"]),
        ("ref-943-476-5919-a", ["an NHS number (943 *** ****)"]),
        (WRONG_CHECK, []),
        ("order 1234567890", []),
        ("Results for 12/03/1980", ["a date of birth"]),
        ("seen 3 Dec 1980", ["a date of birth"]),
        ("DOB 1980-03-12", ["a date of birth"]),
        ("born 19800312", ["a date of birth"]),
        ("Batch 2026-12-03", []),
        ("run 20261203", []),
        ("31/02/1980", []),
        ("neomesh-0f3a", []),
    ],
)
def test_it_finds_nhs_numbers_and_dates_of_birth(text, found):
    assert findings(text) == found


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"local_id": f"patient-{VALID_NHS}"}, "local_id"),
        ({"subject": "Bloods for DOB 12/03/1980"}, "subject"),
        ({"subject": "Discharge 943 476 5919"}, "subject"),
    ],
)
def test_the_send_service_refuses_pid_in_the_local_id_and_subject(mailbox, kwargs, field):
    with pytest.raises(SendRejected) as refused:
        queue(mailbox, **kwargs)
    assert refused.value.field == field
    assert RULE in str(refused.value)
    assert VALID_NHS not in str(refused.value) and "12/03/1980" not in str(refused.value)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_reference_that_only_looks_like_an_nhs_number_is_sent(mailbox):
    message = queue(mailbox, local_id=f"order-{WRONG_CHECK}", subject="Batch 2026-12-03")
    assert message.status == Status.QUEUED


@pytest.mark.django_db
def test_the_send_form_shows_the_pid_refusal_on_the_field(client, admin_user, mailbox):
    client.force_login(admin_user)
    data = {
        "mailbox": "X26ABC1",
        "recipient": "X26ABC2",
        "workflow_id": "TEST_WORKFLOW",
        "subject": "",
        "local_id": VALID_NHS,
        "file": SimpleUploadedFile("a.csv", b"a,b\n", content_type="text/csv"),
    }
    response = client.post(reverse("messaging:send"), data)
    assert response.status_code == 200
    assert RULE in " ".join(response.context["form"].errors["local_id"])
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_mesh_send_refuses_pid_with_the_rules_wording(mailbox, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    with pytest.raises(CommandError, match=f"The subject {RULE}"):
        call_command(
            "mesh_send",
            "X26ABC1",
            str(path),
            "--to",
            "X26ABC2",
            "--workflow",
            "TEST_WORKFLOW",
            "--subject",
            f"NHS {VALID_NHS}",
        )


@pytest.mark.django_db
def test_a_demographic_recipient_is_refused_unless_the_workflow_is_marked(mailbox):
    with pytest.raises(SendRejected, match="not marked for demographic addressing") as refused:
        queue(mailbox, to=f"{VALID_NHS}_19800312_McDonald")
    assert refused.value.field == "recipient"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to", "text"),
    [
        (f"{WRONG_CHECK}_19800312_Smith", "check digit is wrong"),
        (f"{VALID_NHS}_1980_Smith", "not a demographic address"),
        (f"{VALID_NHS}_19800312_" + "S" * 95, "not a demographic address"),
    ],
)
def test_a_demographic_recipient_is_checked(mailbox, to, text):
    Workflow.objects.filter(mailbox=mailbox).update(demographic_addressing=True)
    with pytest.raises(SendRejected, match=text) as refused:
        queue(mailbox, to=to)
    assert refused.value.field == "recipient"


@pytest.mark.django_db
def test_a_demographic_recipient_keeps_its_case_and_is_masked_in_lists_and_audit(
    client, admin_user, mailbox
):
    Workflow.objects.filter(mailbox=mailbox).update(demographic_addressing=True)
    to = f"{VALID_NHS}_19800312_McDonald"
    message = queue(mailbox, to=to, actor=Actor.person(user=admin_user))
    assert (message.recipient, message.demographic) == (to, True)
    record = AuditRecord.objects.get(action="message.queued")
    assert VALID_NHS not in record.detail and "McDonald" not in record.detail
    client.force_login(admin_user)
    listing = client.get(reverse("messaging:list")).content.decode()
    assert VALID_NHS not in listing and "McDonald" not in listing
    assert "943******* (demographic address)" in listing
    mailbox_page = client.get(reverse("mailboxes:detail", args=[mailbox.pk])).content.decode()
    assert VALID_NHS not in mailbox_page


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_the_worker_sends_the_flags_and_the_demographic_address_as_given(sandbox, settings):
    with RecordingProxy(sandbox.url) as proxy:
        settings.MESH_BASE_URLS = {**settings.MESH_BASE_URLS, "sandbox": proxy.url}
        sender = make_mailbox("X26ABC1")
        make_mailbox("X26ABC2")
        flagged = queue(sender, b"zip bytes", encrypted=True, compressed=True)
        assert outbox.message_send(message_id=flagged.pk) == Status.ACCEPTED
        Workflow.objects.filter(mailbox=sender).update(demographic_addressing=True)
        to = f"{VALID_NHS}_19800312_McDonald"
        routed = queue(sender, b"for a patient", to=to)
        outbox.message_send(message_id=routed.pk)  # the sandbox knows no demographic routing
        first, second = [r for r in proxy.requests if r.method == "POST"][:2]
    assert first.headers["mex-content-encrypted"] == "Y"
    assert first.headers["mex-content-compressed"] == "Y"
    assert second.headers["mex-to"] == to  # not upper-cased
    assert "mex-content-encrypted" not in second.headers
