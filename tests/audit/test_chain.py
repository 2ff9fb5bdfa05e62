"""The audit trail: sealed in a hash chain, append-only, secrets masked, verification names breaks."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from portal.audit.models import AppendOnlyError, AuditRecord, ChainHead, Verification
from portal.audit.services import record
from portal.audit.verify import verify_chain
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def _records(n: int) -> list[AuditRecord]:
    return [
        record(action="test.event", actor_label="tester", actor_kind="system", detail=str(i))
        for i in range(n)
    ]


def _raw(sql: str, params: list) -> None:
    # Tampering goes straight to the database, as an attacker with database access would.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_it_chains_each_record_to_the_one_before():
    head_before = ChainHead.objects.filter(pk=1).first()
    first, second, third = _records(3)
    assert first.prev_hash == (head_before.last_hash if head_before else "0" * 64)
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert third.seq == first.seq + 2
    assert verify_chain().ok


def test_it_refuses_updates_and_deletes_through_django():
    entry = _records(1)[0]
    entry.detail = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=entry.pk).update(detail="changed")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.all().delete()


def test_it_names_an_altered_record():
    entries = _records(5)
    _raw("UPDATE audit_auditrecord SET detail = %s WHERE seq = %s", ["forged", entries[2].seq])
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, entries[2].seq)
    assert "altered" in report.problem


def test_it_names_a_removed_record():
    entries = _records(5)
    _raw("DELETE FROM audit_auditrecord WHERE seq = %s", [entries[1].seq])
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, entries[1].seq)
    assert "missing" in report.problem


def test_it_names_a_removed_last_record():
    entries = _records(3)
    _raw("DELETE FROM audit_auditrecord WHERE seq = %s", [entries[-1].seq])
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, entries[-1].seq)


def test_it_names_reordered_records():
    entries = _records(4)
    a, b = entries[1], entries[2]
    # Swap two records' positions (and re-seal each so its own hash matches its content).
    for entry, new_seq in ((a, -1), (b, a.seq), (a, b.seq)):
        _raw("UPDATE audit_auditrecord SET seq = %s WHERE id = %s", [new_seq, entry.pk])
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, a.seq)


def test_the_command_exits_non_zero_naming_the_first_broken_link(capsys):
    entries = _records(3)
    call_command("audit_verify")
    assert f"{AuditRecord.objects.count()} records verified" in capsys.readouterr().out
    _raw(
        "UPDATE audit_auditrecord SET actor_label = %s WHERE seq = %s", ["mallory", entries[0].seq]
    )
    with pytest.raises(CommandError, match=f"#{entries[0].seq}"):
        call_command("audit_verify")
    assert list(Verification.objects.values_list("ok", flat=True)) == [False, True]


def test_it_masks_secrets_in_captured_model_changes():
    mailbox = make_mailbox("X26ABC1", password="first-secret", shared_key="key-one")
    mailbox.password = "second-secret"
    mailbox.save()
    trail = AuditRecord.objects.for_object(mailbox)
    text = " ".join(str(entry.changes) for entry in trail)
    assert "secret" in text  # the mask says a secret changed...
    assert "first-secret" not in text and "second-secret" not in text and "key-one" not in text
    assert set(trail.values_list("action", flat=True)) == {"mailbox.create", "mailbox.update"}


def test_it_records_sign_in_sign_out_and_failed_sign_in(client, admin_user):
    client.post("/accounts/login/", {"username": admin_user.username, "password": "wrong password"})
    client.post(
        "/accounts/login/", {"username": admin_user.username, "password": "a-long-test-password"}
    )
    client.post("/accounts/logout/")
    actions = list(AuditRecord.objects.order_by("seq").values_list("action", "actor_label"))
    assert ("auth.login_failed", admin_user.username) in actions
    assert ("auth.login", admin_user.username) in actions
    assert ("auth.logout", admin_user.username) in actions
    assert ChainHead.objects.get().last_seq == AuditRecord.objects.count()
    assert verify_chain().ok
