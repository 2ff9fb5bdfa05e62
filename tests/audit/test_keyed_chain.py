"""The keyed audit chain: what an attacker with database access (or even the key) cannot hide."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from portal.audit import tasks
from portal.audit.models import AuditRecord, ChainHead, Verification
from portal.audit.sealing import publish_head, read_heads
from portal.audit.services import Actor, record
from portal.audit.verify import verify_chain

pytestmark = pytest.mark.django_db

KEY_A = "a1:" + "A" * 40
KEY_B = "b2:" + "B" * 40


@pytest.fixture(autouse=True)
def _keys(settings):
    # The records migrate sealed stay verifiable: their key is kept as a retired one.
    settings.AUDIT_CHAIN_KEYS = [KEY_A, *settings.AUDIT_CHAIN_KEYS]
    return settings


def _empty_chain() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord")
        cursor.execute("DELETE FROM audit_chainhead")
        cursor.execute("DELETE FROM audit_verification")


def _records(n: int, start: int = 0) -> list[AuditRecord]:
    return [
        record(action="test.event", actor=Actor(kind="system", label="tester"), detail=str(i))
        for i in range(start, start + n)
    ]


def _rows() -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditrecord ORDER BY seq")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _attacker_reseals(change_seq: int, new_detail: str, *, key: bytes | None = None) -> None:
    """Rewrite one record and recompute every hash after it straight in the database, as someone
    with the database and NeoMesh's source would: plain SHA-256 (no key), or HMAC with a stolen
    key. Then move the chain head and remove the verification history too."""
    import hmac

    prev = "0" * 64
    for row in _rows():
        if row["seq"] < change_seq:
            prev = row["hash"]
            continue
        entry = AuditRecord.objects.get(pk=row["id"])
        if row["seq"] == change_seq:
            entry.detail = new_detail
        entry.prev_hash = prev
        if key is None:
            entry.key_id = ""  # no key: a plain SHA-256 chain is all that can be computed
        canonical = json.dumps(
            entry.sealed_content(), sort_keys=True, separators=(",", ":"), default=str
        ).encode()
        new_hash = (
            hashlib.sha256(canonical).hexdigest()
            if key is None
            else hmac.new(key, canonical, hashlib.sha256).hexdigest()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditrecord SET detail = %s, prev_hash = %s, hash = %s, key_id = %s "
                "WHERE id = %s",
                [entry.detail, prev, new_hash, entry.key_id, row["id"]],
            )
        prev = new_hash
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_chainhead SET last_hash = %s", [prev])
        cursor.execute("DELETE FROM audit_verification")


def test_records_are_sealed_with_the_named_key():
    first, second = _records(2)
    assert first.key_id == second.key_id == "a1"
    canonical = json.dumps(
        second.sealed_content(), sort_keys=True, separators=(",", ":"), default=str
    ).encode()
    assert second.hash != hashlib.sha256(canonical).hexdigest()  # not a plain hash
    assert verify_chain().ok


def test_an_attacker_who_rewrites_a_record_and_recomputes_every_hash_is_caught():
    entries = _records(5)
    _attacker_reseals(entries[2].seq, "nothing happened here")
    # Every hash in the database agrees with its record and the one before...
    rows = _rows()
    assert all(
        row["prev_hash"] == before["hash"] for before, row in zip(rows, rows[1:], strict=False)
    )
    # ...and still verification fails, at the first record that is no longer keyed.
    report = verify_chain()
    assert not report.ok and report.first_broken_seq == entries[2].seq
    assert "not sealed with a key" in report.problem
    with pytest.raises(CommandError, match=f"#{entries[2].seq}"):
        call_command("audit_verify")


def test_rewriting_the_whole_chain_without_the_key_is_caught_by_the_published_heads():
    entries = _records(4)
    assert tasks.publish_head() == f"audit chain head #{entries[-1].seq} published"
    _attacker_reseals(1, "rewritten from the start")  # every record plain now, all consistent
    report = verify_chain()
    assert not report.ok and report.first_broken_seq == entries[-1].seq
    assert "not the one published" in report.problem


def test_even_with_the_stolen_key_a_rewrite_before_a_published_head_is_caught():
    entries = _records(3)
    publish_head()
    more = _records(2, start=3)
    _attacker_reseals(entries[1].seq, "forged", key=("A" * 40).encode())
    report = verify_chain()
    assert not report.ok and report.first_broken_seq == entries[-1].seq
    assert "rewritten and sealed again" in report.problem
    assert more  # records after the last publication are the next publication's to protect


def test_records_removed_after_a_published_head_are_caught_even_with_head_and_history_cut():
    entries = _records(4)
    publish_head()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE seq >= %s", [entries[2].seq])
        cursor.execute("DELETE FROM audit_verification")
    ChainHead.objects.update(last_seq=entries[1].seq, last_hash=entries[1].hash)
    report = verify_chain()
    assert not report.ok and report.first_broken_seq == entries[2].seq
    assert f"#{entries[-1].seq} was published" in report.problem


def test_the_head_is_published_to_the_file_once_per_change_and_to_the_logs(settings, caplog):
    _records(2)
    caplog.set_level("INFO", logger="portal.audit.heads")
    publish_head()
    publish_head()
    _records(1)
    publish_head()
    heads = read_heads()
    assert [h.seq for h in heads] == [heads[0].seq, heads[0].seq + 1]
    assert sum("audit chain head #" in m for m in caplog.messages) == 3


def test_a_forged_line_in_the_head_file_is_refused(settings):
    _records(1)
    publish_head()
    with open(settings.AUDIT_HEAD_FILE, "a") as handle:
        handle.write(
            json.dumps({"seq": 1, "hash": "0" * 64, "at": "x", "key_id": "a1", "mac": "f" * 64})
            + "\n"
        )
    report = verify_chain()
    assert (
        not report.ok and "line 2" in report.problem and "not written by NeoMesh" in report.problem
    )


def test_rotation_seals_new_records_with_the_new_key_and_old_ones_still_verify(settings):
    _empty_chain()
    old = _records(2)
    settings.AUDIT_CHAIN_KEYS = [KEY_B, KEY_A]
    new = _records(2, start=2)
    assert {e.key_id for e in old} == {"a1"} and {e.key_id for e in new} == {"b2"}
    assert verify_chain().ok
    settings.AUDIT_CHAIN_KEYS = [KEY_B]  # the retired key dropped too early
    report = verify_chain()
    assert not report.ok and "key 'a1', which AUDIT_CHAIN_KEYS no longer holds" in report.problem


def test_plain_sha256_records_from_before_keys_still_verify(settings):
    _empty_chain()
    settings.AUDIT_CHAIN_KEYS = []
    plain = _records(3)
    assert {e.key_id for e in plain} == {""}
    settings.AUDIT_CHAIN_KEYS = [KEY_A]
    keyed = _records(2, start=3)
    assert {e.key_id for e in keyed} == {"a1"}
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "records verified" in out.getvalue()
    assert Verification.objects.latest("pk").ok
