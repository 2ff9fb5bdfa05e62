"""CSV exports of the message log and the audit trail: streamed, filtered, audited, formula-safe.

Rows are read in keyset batches and written in blocks, so a million rows never sit in memory. An
export covers the rows that existed when it started (messages created, records sealed, up to then):
they are counted first and the export is audited, with its filters and that count, before the first
row leaves. Payload content is never exported; the message log is metadata only.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator

from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils import timezone

from portal.mailboxes.models import Mailbox
from portal.messaging.models import Message

from .models import AuditRecord, ChainHead
from .services import audit_person_action, mask_changes

BATCH = 2000
# The first rows go out sooner: a small first batch and block, then full ones.
FIRST_BATCH = 100
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A spreadsheet that splits on ';' or a tab (or re-splits a pasted line on ',') starts a new cell
# after any separator: a formula character after one, even past spaces, is a formula too.
EMBEDDED_FORMULA_RE = re.compile(r"[,;\t\r\n][ ]*[=+\-@]")

MESSAGE_COLUMNS = [
    ("created_at", "Created"), ("mailbox_id", "Mailbox"), (None, "Environment"),
    ("direction", "Direction"), ("message_type", "Type"), ("status", "Status"),
    ("mesh_message_id", "MESH message id"), ("local_id", "Local id"), ("workflow_id", "Workflow"),
    ("sender", "Sender"), ("recipient", "Recipient"), ("subject", "Subject"),
    ("filename", "Filename"), ("size_bytes", "Size (bytes)"), ("mesh_status_code", "MESH code"),
    ("failure_reason", "Failure reason"), ("linked_mesh_message_id", "Concerns MESH message id"),
    ("accepted_at", "Accepted"), ("received_at", "Received"), ("acknowledged_at", "Acknowledged"),
    ("id", "NeoMesh id"),
]  # fmt: skip
TRAIL_COLUMNS = [
    ("seq", "Seq"), ("at", "At"), ("actor_label", "Actor"), ("actor_kind", "Actor kind"),
    ("ip_address", "IP address"), ("action", "Action"), ("object_type", "Object type"),
    ("object_id", "Object id"), ("object_repr", "Object"), ("changes", "Changes"),
    ("reason", "Reason"), ("detail", "Detail"), ("prev_hash", "Previous hash"), ("hash", "Hash"),
]  # fmt: skip


def safe_cell(value) -> object:
    """A value as a CSV cell that no spreadsheet runs as a formula: such text gets a leading '."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return (
            timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, str) and (
        value.startswith(FORMULA_PREFIXES) or EMBEDDED_FORMULA_RE.search(value)
    ):
        return "'" + value
    return value


def csv_blocks(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text in blocks of BATCH rows (one tiny write per row would be slow to serve)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # a byte-order mark, so spreadsheets read the file as UTF-8
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([safe_cell(value) for value in row])
        if count == FIRST_BATCH or count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _streamed(blocks: Iterator[str], stem: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(blocks, content_type="text/csv; charset=utf-8")
    name = f"neomesh-{stem}-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


# An export's audit record says how many rows it holds, counted up to this many: an exact count of
# millions of rows would hold up the first row for seconds (the export itself streams them all).
COUNT_LIMIT = 10_000


def _bounded_count(queryset) -> int:
    return queryset.order_by()[: COUNT_LIMIT + 1].count()


def _describe(filters: dict[str, str], rows: int, what: str) -> str:
    applied = ", ".join(f"{name}={value}" for name, value in filters.items()) or "none"
    counted = f"more than {COUNT_LIMIT:,}" if rows > COUNT_LIMIT else str(rows)
    return f"{counted} {what}; filters: {applied}"


# Message log


def _batch_sizes() -> Iterator[int]:
    yield FIRST_BATCH
    while True:
        yield BATCH


def _message_batches(queryset) -> Iterator[tuple]:
    """Rows newest first, read a batch at a time by keyset on (created_at, id)."""
    fields = [name for name, _ in MESSAGE_COLUMNS if name]
    created, pk = fields.index("created_at"), fields.index("id")
    cursor = None
    for size in _batch_sizes():
        rows = queryset
        if cursor:
            at, last = cursor
            rows = rows.filter(
                Q(created_at__lt=at) | Q(created_at=at, pk__lt=last), created_at__lte=at
            )
        batch = list(rows.order_by("-created_at", "-id").values_list(*fields)[:size])
        yield from batch
        if len(batch) < size:
            return
        cursor = (batch[-1][created], batch[-1][pk])


def _message_rows(queryset) -> Iterator[list]:
    # Mailboxes are looked up from one small query, not joined (see portal.messaging.log).
    mailboxes = {m.pk: m for m in Mailbox.objects.only("mailbox_id", "environment")}
    for row in _message_batches(queryset):
        mailbox = mailboxes.get(row[1])
        yield [row[0], mailbox.mailbox_id if mailbox else row[1],
               mailbox.environment.upper() if mailbox else "", *row[2:]]  # fmt: skip


def message_log_csv(request, filters) -> StreamingHttpResponse:
    """The filtered message log as CSV; the export is audited before the first row leaves."""
    queryset = filters.filter(Message.objects.filter(created_at__lte=timezone.now()))
    count = _bounded_count(queryset)
    audit_person_action(
        request, action="audit.message_log_exported",
        detail=_describe(filters.applied(), count, "messages"),
    )  # fmt: skip
    header = [title for _, title in MESSAGE_COLUMNS]
    return _streamed(csv_blocks(header, _message_rows(queryset)), "message-log")


# Audit trail


def _trail_rows(queryset) -> Iterator[list]:
    """Records newest first, read a batch at a time by keyset on seq."""
    fields = [name for name, _ in TRAIL_COLUMNS]
    changes = fields.index("changes")
    last = None
    for size in _batch_sizes():
        rows = queryset.filter(seq__lt=last) if last is not None else queryset
        batch = list(rows.order_by("-seq").values_list(*fields)[:size])
        for row in batch:
            row = list(row)
            row[changes] = (
                json.dumps(mask_changes(row[changes]), sort_keys=True) if row[changes] else ""
            )
            yield row
        if len(batch) < size:
            return
        last = batch[-1][0]


def audit_trail_csv(request, filters) -> StreamingHttpResponse:
    """The filtered trail as CSV, up to the record sealed last when the export started."""
    head = ChainHead.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0
    queryset = filters.filter(AuditRecord.objects.filter(seq__lte=head))
    count = _bounded_count(queryset)
    audit_person_action(
        request, action="audit.trail_exported",
        detail=_describe(filters.applied(), count, f"audit records up to #{head}"),
    )  # fmt: skip
    header = [title for _, title in TRAIL_COLUMNS]
    return _streamed(csv_blocks(header, _trail_rows(queryset)), "audit-trail")
