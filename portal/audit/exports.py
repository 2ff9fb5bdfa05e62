"""CSV export of the audit trail: streamed, filtered, audited, formula-safe (portal.lib.csv_export).

Records are read in keyset batches and written in blocks, so a million rows never sit in memory. An
export covers the records sealed when it started: they are counted first and the export is audited,
with its filters and that count, before the first row leaves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse

from portal.lib import csv_export

from .actors import Actor
from .models import AuditRecord, ChainHead
from .services import mask_changes, record

TRAIL_COLUMNS = [
    ("seq", "Seq"),
    ("at", "At"),
    ("actor_label", "Actor"),
    ("actor_kind", "Actor kind"),
    ("ip_address", "IP address"),
    ("action", "Action"),
    ("object_type", "Object type"),
    ("object_id", "Object id"),
    ("object_repr", "Object"),
    ("changes", "Changes"),
    ("reason", "Reason"),
    ("detail", "Detail"),
    ("prev_hash", "Previous hash"),
    ("hash", "Hash"),
]


def _trail_rows(queryset) -> Iterator[list]:
    """Records newest first, read a batch at a time by keyset on seq."""
    fields = [name for name, _ in TRAIL_COLUMNS]
    changes = fields.index("changes")
    last = None
    for size in csv_export.batch_sizes():
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
    queryset = filters.filter(AuditRecord.objects.within(request.reach).filter(seq__lte=head))
    count = csv_export.bounded_count(queryset)
    record(
        actor=Actor.person(request),
        action="audit.trail_exported",
        detail=csv_export.describe_export(filters.applied(), count, f"audit records up to #{head}"),
    )
    header = [title for _, title in TRAIL_COLUMNS]
    return csv_export.streamed_csv(
        csv_export.csv_blocks(header, _trail_rows(queryset)), "audit-trail"
    )
