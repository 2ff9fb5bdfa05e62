"""The audit trail: sealed in a hash chain, append-only, secrets masked, verification names breaks."""

from __future__ import annotations

import io
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from portal.audit.models import AppendOnlyError, AuditRecord, ChainHead, Verification
from portal.audit.services import Actor, record, sealed_together
from portal.audit.verify import verify_chain
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def _records(n: int) -> list[AuditRecord]:
    return [
        record(action="test.event", actor=Actor(kind="system", label="tester"), detail=str(i))
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


def test_records_sealed_together_make_the_same_chain_in_one_go(django_assert_max_num_queries):
    before = _records(1)[0]
    # The head locked and updated once, one insert: as few queries for 8 records as for one.
    with django_assert_max_num_queries(7), sealed_together():
        together = _records(8)
        assert all(entry.pk is None for entry in together)  # collected, not yet written
    assert [entry.seq for entry in together] == list(range(before.seq + 1, before.seq + 9))
    assert together[0].prev_hash == before.hash
    assert all(b.prev_hash == a.hash for a, b in zip(together, together[1:], strict=False))
    stored = AuditRecord.objects.get(seq=together[-1].seq)
    assert (stored.hash, stored.actor_key) == (together[-1].hash, "tester")
    assert ChainHead.objects.get(pk=1).last_hash == together[-1].hash
    after = _records(1)[0]
    assert after.prev_hash == together[-1].hash
    assert verify_chain().ok


def test_records_sealed_together_are_dropped_with_their_transaction():
    head = ChainHead.objects.filter(pk=1).values_list("last_seq", "last_hash").first()
    count = AuditRecord.objects.count()
    with pytest.raises(RuntimeError), sealed_together():
        _records(3)
        raise RuntimeError("the change failed")
    assert AuditRecord.objects.count() == count
    assert ChainHead.objects.filter(pk=1).values_list("last_seq", "last_hash").first() == head
    assert _records(1)[0].seq == (head[0] if head else 0) + 1
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


def test_it_records_sign_in_sign_out_and_a_lockout_not_each_failure(client, admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": admin_user.username, "password": "wrong"},
            REMOTE_ADDR="198.51.100.3",
        )
    client.post(
        "/accounts/login/", {"username": admin_user.username, "password": "a-long-test-password"}
    )
    client.post("/accounts/logout/")
    actions = list(AuditRecord.objects.order_by("seq").values_list("action", "actor_label"))
    assert ("auth.login_failed", admin_user.username) not in actions
    assert actions.count(("auth.lockout", admin_user.username)) == 1
    assert ("auth.login", admin_user.username) in actions
    assert ("auth.logout", admin_user.username) in actions
    assert ChainHead.objects.get().last_seq == AuditRecord.objects.count()
    assert verify_chain().ok


# Verification while records are being sealed, and what it keeps for the next run.


class _Appender:
    """A database hook that seals one record just before the verification's n-th query runs."""

    def __init__(self, before_query: int | None):
        self.before_query, self.queries, self.busy, self.appended = before_query, 0, False, None

    def __call__(self, execute, sql, params, many, context):
        if not self.busy:
            if self.queries == self.before_query:
                self.busy = True
                self.appended = record(
                    action="test.concurrent", actor=Actor(kind="system", label="other")
                )
                self.busy = False
            self.queries += 1
        return execute(sql, params, many, context)


def test_a_record_sealed_while_the_chain_is_walked_is_no_break():
    """Wherever another process appends during the walk, the chain still verifies: tried before
    each query the verification makes (every interleaving the database can see), each time from
    the same five records."""
    _records(5)
    counter = _Appender(None)
    with connection.execute_wrapper(counter):
        assert verify_chain(batch=2).ok
    for before in range(counter.queries):
        with transaction.atomic():
            appender = _Appender(before)
            with connection.execute_wrapper(appender):
                report = verify_chain(batch=2)
            assert appender.appended is not None
            assert report.ok, f"appended before query {before}: {report.problem}"
            transaction.set_rollback(True)


def test_it_fails_when_the_chain_head_is_gone_but_records_remain():
    _records(3)
    ChainHead.objects.all().delete()
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, 1)
    assert "chain head is missing" in report.problem


def test_it_fails_when_the_head_was_moved_back():
    """Moving the head back would leave the records after it unchecked: it is a break too."""
    entries = _records(4)
    ChainHead.objects.update(last_seq=entries[1].seq, last_hash=entries[1].hash)
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, entries[2].seq)


def test_it_fails_when_the_last_record_no_longer_matches_the_head():
    entries = _records(3)
    ChainHead.objects.update(last_hash="f" * 64)
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, entries[-1].seq)


def test_a_passing_run_keeps_the_last_record_it_verified(capsys):
    entries = _records(2)
    call_command("audit_verify")
    result = Verification.objects.get()
    assert (result.last_seq, result.last_hash) == (entries[-1].seq, entries[-1].hash)


def test_the_next_run_notices_the_chain_and_its_head_cut_back():
    entries = _records(4)
    call_command("audit_verify", stdout=io.StringIO())
    cut = entries[2]
    _raw("DELETE FROM audit_auditrecord WHERE seq >= %s", [cut.seq])
    ChainHead.objects.update(last_seq=entries[1].seq, last_hash=entries[1].hash)
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, cut.seq)
    assert f"#{entries[-1].seq} was verified" in report.problem


def test_the_next_run_notices_everything_removed_head_and_all():
    _records(2)
    call_command("audit_verify", stdout=io.StringIO())
    _raw("DELETE FROM audit_auditrecord", [])
    ChainHead.objects.all().delete()
    assert not verify_chain().ok


def test_the_next_run_notices_a_chain_sealed_again_from_some_record_on():
    """An attacker who rewrites a record and re-seals every record after it (and the head) leaves
    a consistent chain; the last verified record's hash gives it away."""
    entries = _records(3)
    call_command("audit_verify", stdout=io.StringIO())
    last = entries[-1]
    forged = AuditRecord.objects.get(pk=last.pk)
    forged.detail = "forged"
    forged.hash = forged.compute_hash()
    _raw(
        "UPDATE audit_auditrecord SET detail = %s, hash = %s WHERE id = %s",
        [forged.detail, forged.hash, last.pk],
    )
    ChainHead.objects.update(last_hash=forged.hash)
    report = verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, last.seq)
    assert "not the one verified" in report.problem


def test_a_failed_run_is_no_anchor_for_the_next():
    entries = _records(2)
    _raw("UPDATE audit_auditrecord SET detail = %s WHERE seq = %s", ["x", entries[0].seq])
    with pytest.raises(CommandError):
        call_command("audit_verify")
    assert Verification.objects.get().last_seq is None


def test_a_record_is_never_dated_before_the_one_it_follows():
    """A host whose clock is behind seals its record at the previous record's time."""
    first = _records(1)[0]
    behind = first.at - timedelta(minutes=5)
    with mock.patch("portal.audit.services.timezone.now", return_value=behind):
        second = _records(1)[0]
    third = _records(1)[0]
    assert first.at <= second.at <= third.at
    assert second.at == first.at
    assert AuditRecord.objects.get(pk=second.pk).at == first.at
    assert verify_chain().ok


def test_dating_works_for_a_chain_whose_head_kept_no_time():
    first = _records(1)[0]
    ChainHead.objects.update(last_at=None)
    with mock.patch(
        "portal.audit.services.timezone.now", return_value=first.at - timedelta(hours=1)
    ):
        second = _records(1)[0]
    assert second.at == first.at
