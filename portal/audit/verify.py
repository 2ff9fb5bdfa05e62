"""Verification of the audit hash chain, against the heads published outside the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.dispatch import Signal

from .models import AuditRecord, ChainHead, Verification
from .sealing import HeadFileDamaged, PublishedHead, UnknownChainKey, read_heads

GENESIS = "0" * 64
# Sent with `report=` inside the transaction that records each verification, so a receiver in a
# higher layer (portal.events raises an event when the chain breaks) commits with it.
chain_verified = Signal()


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str = ""
    last_seq: int = 0
    last_hash: str = GENESIS


def _walk(upto: int, batch: int) -> Iterator[AuditRecord]:
    """Records 1..upto in seq order, read in keyset batches so memory stays flat."""
    last_seq = 0
    while rows := list(
        AuditRecord.objects.filter(seq__gt=last_seq, seq__lte=upto).order_by("seq")[:batch]
    ):
        yield from rows
        last_seq = rows[-1].seq


def _link_problem(
    entry: AuditRecord, expected_seq: int, prev_hash: str, keyed_since: int | None
) -> tuple[int, str] | None:
    if entry.seq != expected_seq:
        return expected_seq, f"record #{expected_seq} is missing (next is #{entry.seq})"
    if entry.prev_hash != prev_hash:
        return (
            entry.seq,
            f"record #{entry.seq} does not follow #{entry.seq - 1} (removed or reordered)",
        )
    if keyed_since is not None and not entry.key_id:
        return entry.seq, (
            f"record #{entry.seq} is not sealed with a key although #{keyed_since} before it is "
            "(sealed again by someone without the key)"
        )
    try:
        computed = entry.compute_hash()
    except UnknownChainKey:
        return entry.seq, (
            f"record #{entry.seq} is sealed with key '{entry.key_id}', which AUDIT_CHAIN_KEYS no "
            "longer holds (keep retired keys configured to verify what they sealed)"
        )
    if computed != entry.hash:
        return entry.seq, f"record #{entry.seq} was altered after it was sealed"
    return None


def _published_problem(entry: AuditRecord, published: dict) -> tuple[int, str] | None:
    for head in published.get(entry.seq, ()):
        if head.hash != entry.hash:
            return entry.seq, (
                f"record #{entry.seq} is not the one published {head.at} (line {head.line} of the "
                "published chain heads): the history up to it was rewritten and sealed again"
            )
    return None


def verify_chain(batch: int = 5000) -> ChainReport:
    """Walk the chain in order; name the first record that was altered, removed or reordered.

    The head is read before the walk, and the walk stops at it: a record sealed meanwhile is the
    next run's to check, not a sign of tampering. The highest seq is read before the head (the
    head only moves forward, so it can never be behind it unless it was moved back by hand). The
    last run that passed is the anchor: the record it ended on must still be there, unchanged.
    """
    try:
        heads = read_heads()
    except HeadFileDamaged as exc:
        return ChainReport(False, 0, None, f"the published chain heads cannot be trusted: {exc}")
    top = AuditRecord.objects.aggregate(top=Max("seq"))["top"] or 0
    head = ChainHead.objects.filter(pk=1).values_list("last_seq", "last_hash").first()
    anchor = Verification.objects.filter(ok=True, last_seq__isnull=False).order_by("-pk").first()
    if problem := _head_problem(head, top, anchor) or _removed_after_published(head, heads):
        return ChainReport(False, 0, *problem)
    published: dict[int, list[PublishedHead]] = {}
    for published_head in heads:
        published.setdefault(published_head.seq, []).append(published_head)
    head_seq, head_hash = head or (0, GENESIS)
    expected_seq, prev_hash, checked, keyed_since = 1, GENESIS, 0, None
    for entry in _walk(head_seq, batch):
        checked += 1
        problem = (
            _link_problem(entry, expected_seq, prev_hash, keyed_since)
            or _anchor_problem(entry, anchor)
            or _published_problem(entry, published)
        )
        if problem:
            return ChainReport(False, checked, *problem)
        if entry.key_id and keyed_since is None:
            keyed_since = entry.seq
        prev_hash, expected_seq = entry.hash, entry.seq + 1
    if expected_seq - 1 < head_seq:
        last = expected_seq - 1
        problem = f"records after #{last} were removed (the chain head is at #{head_seq})"
        return ChainReport(False, checked, last + 1, problem)
    if prev_hash != head_hash:
        problem = f"record #{head_seq} is not the one the chain head sealed"
        return ChainReport(False, checked, head_seq, problem)
    return ChainReport(True, checked, last_seq=head_seq, last_hash=head_hash)


def _head_problem(head, top: int, anchor: Verification | None) -> tuple[int, str] | None:
    head_seq = head[0] if head else 0
    if head is None and (top or (anchor and anchor.last_seq)):
        return 1, "the chain head is missing (records were removed, or it was deleted)"
    if top > head_seq:
        return head_seq + 1, f"the chain head is at #{head_seq} but records go on to #{top}"
    if anchor and anchor.last_seq > head_seq:
        return head_seq + 1, (
            f"records after #{head_seq} were removed "
            f"(#{anchor.last_seq} was verified {anchor.at:%Y-%m-%d %H:%M})"
        )
    return None


def _removed_after_published(head, heads: list[PublishedHead]) -> tuple[int, str] | None:
    head_seq = head[0] if head else 0
    latest = max(heads, key=lambda h: h.seq, default=None)
    if latest and latest.seq > head_seq:
        return head_seq + 1, (
            f"records after #{head_seq} were removed (#{latest.seq} was published {latest.at})"
        )
    return None


def _anchor_problem(entry: AuditRecord, anchor: Verification | None) -> tuple[int, str] | None:
    if anchor and entry.seq == anchor.last_seq and entry.hash != anchor.last_hash:
        return entry.seq, (
            f"record #{entry.seq} is not the one verified {anchor.at:%Y-%m-%d %H:%M} "
            "(the chain was sealed again from some point on)"
        )
    return None


def verify_and_record() -> ChainReport:
    report = verify_chain()
    with transaction.atomic():
        Verification.objects.create(
            ok=report.ok,
            records_checked=report.checked,
            first_broken_seq=report.first_broken_seq,
            detail=report.problem,
            last_seq=report.last_seq if report.ok else None,
            last_hash=report.last_hash if report.ok else "",
        )
        chain_verified.send(sender=Verification, report=report)
    return report
