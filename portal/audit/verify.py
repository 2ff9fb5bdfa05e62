"""Verification of the audit hash chain."""

from __future__ import annotations

from dataclasses import dataclass

from .models import AuditRecord, ChainHead, Verification

GENESIS = "0" * 64


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str = ""


def verify_chain(batch: int = 5000) -> ChainReport:
    """Walk the chain in order; name the first record that was altered, removed or reordered."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    last_seq = 0
    while True:
        rows = list(AuditRecord.objects.filter(seq__gt=last_seq).order_by("seq")[:batch])
        if not rows:
            break
        for entry in rows:
            checked += 1
            if entry.seq != expected_seq:
                return ChainReport(
                    False,
                    checked,
                    expected_seq,
                    f"record #{expected_seq} is missing (next is #{entry.seq})",
                )
            if entry.prev_hash != prev_hash:
                return ChainReport(
                    False,
                    checked,
                    entry.seq,
                    f"record #{entry.seq} does not follow #{entry.seq - 1} (removed or reordered)",
                )
            if entry.compute_hash() != entry.hash:
                return ChainReport(
                    False,
                    checked,
                    entry.seq,
                    f"record #{entry.seq} was altered after it was sealed",
                )
            prev_hash, expected_seq, last_seq = entry.hash, entry.seq + 1, entry.seq
    head = ChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev_hash):
        return ChainReport(
            False,
            checked,
            last_seq + 1,
            f"records after #{last_seq} were removed (the chain head is at #{head.last_seq})",
        )
    return ChainReport(True, checked)


def verify_and_record() -> ChainReport:
    report = verify_chain()
    Verification.objects.create(ok=report.ok, records_checked=report.checked,
                                first_broken_seq=report.first_broken_seq, detail=report.problem)  # fmt: skip
    return report
