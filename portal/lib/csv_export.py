"""Streamed, formula-safe CSV: the writer behind every export (the message log, the audit trail).

Rows are written in blocks, so a million rows never sit in memory, and the first rows go out sooner
(a small first block, then full ones). A cell a spreadsheet would run as a formula is defused.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

BATCH = 2000
# The first rows go out sooner: a small first batch and block, then full ones.
FIRST_BATCH = 100
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A spreadsheet that splits on ';' or a tab (or re-splits a pasted line on ',') starts a new cell
# after any separator: a formula character after one, even past spaces, is a formula too.
EMBEDDED_FORMULA_RE = re.compile(r"[,;\t\r\n][ ]*[=+\-@]")


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


def batch_sizes() -> Iterator[int]:
    """How many rows each keyset read fetches: a small first batch, then full ones."""
    yield FIRST_BATCH
    while True:
        yield BATCH


def streamed_csv(blocks: Iterator[str], stem: str) -> StreamingHttpResponse:
    """An attachment named `neomesh-<stem>-<local time>.csv`, never cached."""
    response = StreamingHttpResponse(blocks, content_type="text/csv; charset=utf-8")
    name = f"neomesh-{stem}-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


# An export's audit record says how many rows it holds, counted up to this many: an exact count of
# millions of rows would hold up the first row for seconds (the export itself streams them all).
COUNT_LIMIT = 10_000


def bounded_count(queryset) -> int:
    """The rows of `queryset`, counted up to COUNT_LIMIT + 1."""
    return queryset.order_by()[: COUNT_LIMIT + 1].count()


def describe_export(filters: dict[str, str], rows: int, what: str) -> str:
    """The audit detail of an export: how many rows of what, and the filters applied."""
    applied = ", ".join(f"{name}={value}" for name, value in filters.items()) or "none"
    counted = f"more than {COUNT_LIMIT:,}" if rows > COUNT_LIMIT else str(rows)
    return f"{counted} {what}; filters: {applied}"
