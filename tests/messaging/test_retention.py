"""Retention: exactly what the rules say is purged, never a held or undelivered payload; the
message, its timeline and a verifiable audit trail stay."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.audit.verify import verify_chain
from portal.lib import payloads
from portal.messaging import retention, tasks
from portal.messaging.models import Direction, LegalHold, Message, RetentionRule, Status
from portal.messaging.services import payload_confirm
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def world(db):
    a, b = make_mailbox("X26ABC1"), make_mailbox("X26ABC2")
    now = timezone.now()
    old, recent = now - 40 * DAY, now - 2 * DAY

    def inbound(mailbox, workflow, received, **kw):
        kw.setdefault("status", Status.ACKNOWLEDGED)
        return make_message(mailbox, workflow_id=workflow, received_at=received, **kw)

    def outbound(mailbox, workflow, accepted, **kw):
        kw.setdefault("status", Status.ACCEPTED)
        return make_message(
            mailbox, direction=Direction.OUTBOUND, workflow_id=workflow, accepted_at=accepted, **kw
        )

    m = {
        # Confirmed delivered 40 days ago: due under a 30-day "confirmed" rule.
        "confirmed_old": inbound(a, "PATH_RESULTS", old, payload_confirmed_at=old),
        "confirmed_recent": inbound(a, "PATH_RESULTS", old, payload_confirmed_at=recent),
        "never_confirmed": inbound(a, "PATH_RESULTS", old),
        "held": inbound(a, "PATH_RESULTS", old, payload_confirmed_at=old),
        "held_workflow": inbound(a, "PATH_DISPUTED", old, payload_confirmed_at=old),
        # Not acknowledged to MESH yet: never purged, whatever its age.
        "unacknowledged": inbound(a, "GP_LETTERS", old, status=Status.RECEIVED),
        "received_old": inbound(a, "GP_LETTERS", old),
        "other_mailbox": inbound(b, "GP_LETTERS", old),
        "sent_old": outbound(a, "GP_LETTERS", old),
        "queued_old": outbound(a, "GP_LETTERS", None, status=Status.QUEUED, created_at=old),
        "recipient_acked_old": outbound(
            a, "PATH_RESULTS", old, status=Status.ACKNOWLEDGED, acknowledged_at=old
        ),
    }
    RetentionRule.objects.create(
        name="Pathology 30d after delivery",
        workflow_pattern="PATH_*",
        keep_days=30,
        clock="confirmed",
    )
    # More specific (mailbox + direction): governs X26ABC1's inbound GP letters.
    RetentionRule.objects.create(
        name="X26ABC1 GP letters in",
        mailbox=a,
        direction="in",
        workflow_pattern="GP_LETTERS",
        keep_days=7,
        clock="received",
    )
    RetentionRule.objects.create(
        name="GP letters 90d", workflow_pattern="GP_*", keep_days=90, clock="received"
    )
    LegalHold.objects.create(message=m["held"], reason="Subject access request 123")
    LegalHold.objects.create(workflow_id="PATH_DISPUTED", reason="Litigation hold")
    return m


def names(result) -> set[int]:
    return {message.pk for message, _ in result["would_purge"]}


def test_a_dry_run_lists_exactly_what_the_rules_would_purge_and_changes_nothing(world):
    result = retention.retention_sweep(dry_run=True)
    expected = {world[k].pk for k in ("confirmed_old", "received_old", "recipient_acked_old")}
    assert names(result) == expected
    rules = {m.pk: rule.name for m, rule in result["would_purge"]}
    assert rules[world["received_old"].pk] == "X26ABC1 GP letters in"
    assert not Message.objects.filter(payload_purged_at__isnull=False).exists()

    out = StringIO()
    call_command("retention_purge", "--dry-run", stdout=out)
    assert "3 payloads would be purged" in out.getvalue()
    out = StringIO()
    call_command("retention_purge", "--dry-run", "--rule", "GP letters 90d", stdout=out)
    assert "0 payloads would be purged" in out.getvalue()


def test_the_sweep_purges_exactly_that_keeping_metadata_timeline_and_audit(
    world, client, admin_user
):
    due = {world[k].pk for k in ("confirmed_old", "received_old", "recipient_acked_old")}
    stored = {pk: Message.objects.get(pk=pk).payload.name for pk in due}
    kept_names = {k: m.payload.name for k, m in world.items() if m.pk not in due}

    assert tasks.purge_payloads() == "3 payloads purged"

    for pk, name in stored.items():
        message = Message.objects.get(pk=pk)
        assert not payloads.store().exists(name)
        assert message.payload.name == "" and message.payload_purged_at is not None
        assert message.size_bytes and message.payload_sha256  # metadata kept
        assert message.events.filter(kind="purged").exists()
        record = AuditRecord.objects.for_object(message).get(action="message.payload_purged")
        assert f"purged under rule “{message.payload_purge_rule}”" in record.detail
    for key, name in kept_names.items():
        assert payloads.store().exists(name), key
    assert verify_chain().ok
    assert tasks.purge_payloads() == "0 payloads purged"  # nothing twice

    client.force_login(admin_user)
    page = client.get(
        reverse("messaging:detail", args=[world["confirmed_old"].pk])
    ).content.decode()
    assert "under rule “Pathology 30d after delivery”" in page
    assert (
        client.get(reverse("messaging:download", args=[world["confirmed_old"].pk])).status_code
        == 404
    )


def test_the_message_page_says_when_the_payload_goes_or_why_it_is_kept(world, client, admin_user):
    client.force_login(admin_user)

    def said(key):
        html = client.get(reverse("messaging:detail", args=[world[key].pk])).content.decode()
        return html.split("data-retention>")[1].split("</dd>")[0]

    assert "legal hold on this message" in said("held") and "Subject access request" in said("held")
    assert "legal hold on workflow PATH_DISPUTED" in said("held_workflow")
    assert "not yet" in said("never_confirmed") and "delivery is confirmed" in said(
        "never_confirmed"
    )
    assert "acknowledged to MESH" in said("unacknowledged")
    assert "Will be purged after" in said("confirmed_recent")
    assert "90 days after MESH accepts it" in said("queued_old")


def test_releasing_a_hold_and_confirming_delivery_let_the_rules_apply(world, admin_user):
    hold = LegalHold.objects.get(message=world["held"])
    retention.legal_hold_release(hold=hold, actor=Actor.person(user=admin_user))
    assert payload_confirm(message=world["never_confirmed"], source="delivery to SFTP")
    assert not payload_confirm(message=world["never_confirmed"], source="again")  # once
    result = retention.retention_sweep(dry_run=True)
    assert world["held"].pk in names(result)
    assert world["never_confirmed"].pk not in names(result)  # confirmed now: 30 days from today
    assert AuditRecord.objects.filter(action="message.legal_hold_released").exists()
    assert AuditRecord.objects.filter(action="message.payload_confirmed").exists()


def test_a_hold_placed_after_the_listing_still_stops_the_purge(world, admin_user):
    due = next(m for m, _ in retention.purgeable() if m.pk == world["confirmed_old"].pk)
    retention.legal_hold_place(
        message=due, reason="Complaint 7", actor=Actor.person(user=admin_user)
    )
    rule = retention.rule_for(due)
    assert not retention.payload_purge(message_id=due.pk, rule=rule)
    assert payloads.store().exists(Message.objects.get(pk=due.pk).payload.name)


def test_a_payload_that_cannot_be_removed_is_named_and_the_rest_go_on(world, monkeypatch):
    real_delete = payloads.delete_payload
    broken = Message.objects.get(pk=world["confirmed_old"].pk).payload.name

    def delete(name):
        if name == broken:
            raise OSError("Read-only file system")
        real_delete(name)

    monkeypatch.setattr(payloads, "delete_payload", delete)
    result = retention.retention_sweep()
    assert result["purged"] == 2 and "Read-only file system" in result["failed"][0]
    message = Message.objects.get(pk=world["confirmed_old"].pk)
    assert message.payload.name == broken and message.payload_purged_at is None  # nothing recorded
    assert not message.events.filter(kind="purged").exists()
