from __future__ import annotations

from .verify import verify_and_record


def verify_chain() -> str:
    """Scheduled daily; the dashboard shows the last result."""
    report = verify_and_record()
    return "audit chain intact" if report.ok else f"audit chain broken: {report.problem}"
