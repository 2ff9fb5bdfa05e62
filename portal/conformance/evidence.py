"""The evidence pack of a run: run.json (the whole log) and report.html (printable), zipped.

Both are built from the database whenever they are asked for, so the pack always matches the run's
record. When a run was started from an onboarding task, the zip is attached to that task as witness
test evidence through the onboarding app's own `evidence_add` (stored privately, hashed, audited).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from .models import ConformanceRun, ScenarioResult

FORMAT = "neomesh-conformance-run/1"
NOTES = [
    "Authorization headers are redacted to their scheme and mailbox id; passwords and shared keys "
    "never leave NeoMesh.",
    "Payloads are recorded as their size and SHA-256 only, never their content.",
    "Scenarios with many requests keep a sample of their exchanges (the first 40, every failure and "
    "inbox listing, the last 10); exchanges_total says how many there were.",
]


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _task(run: ConformanceRun) -> dict[str, Any] | None:
    if run.task is None:
        return None
    return {"plan": run.task.plan.title, "ref": run.task.ref, "title": run.task.title}


def _scenario(result: ScenarioResult) -> dict[str, Any]:
    return {
        "position": result.position,
        "key": result.key,
        "witness_case": result.ref,
        "title": result.title,
        "outcome": result.outcome,
        "reason": result.reason,
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "duration_ms": result.duration_ms,
        "message_ids": result.message_ids,
        "payloads": result.payloads,
        "measurements": result.measurements,
        "notes": result.notes,
        "exchanges_total": result.exchanges_total,
        "exchanges_kept": len(result.exchanges),
        "exchanges": result.exchanges,
    }


def run_document(run: ConformanceRun) -> dict[str, Any]:
    """The run's whole log as plain data: what run.json holds."""
    return {
        "format": FORMAT,
        "generated_at": timezone.now().isoformat(),
        "run": {
            "id": run.pk,
            "status": run.status,
            "summary": run.summary,
            "error": run.error,
            "cleanup": run.cleanup,
            "environment": run.environment,
            "base_url": run.base_url,
            "mailbox": run.mailbox.mailbox_id,
            "mailbox_ods": run.mailbox.organisation.ods_code,
            "peer": run.peer.mailbox_id,
            "peer_ods": run.peer.organisation.ods_code,
            "workflow_id": run.workflow_id,
            "reply_workflow_id": run.reply_workflow_id,
            "client_version": run.client_version,
            "origin": run.origin,
            "started_by": run.started_by_label,
            "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "duration_seconds": run.duration_seconds(),
            "onboarding_task": _task(run),
        },
        "scenarios": [_scenario(result) for result in run.results.all()],
        "notes": NOTES,
    }


def report_context(run: ConformanceRun) -> dict[str, Any]:
    return {
        "run": run,
        "results": list(run.results.all()),
        "counts": run.counts(),
        "generated_at": timezone.now(),
        "notes": NOTES,
    }


def report_html(run: ConformanceRun) -> str:
    """report.html for the zip: one self-contained page (its stylesheet inside it)."""
    return render_to_string("conformance/report_standalone.html", report_context(run))


def zip_filename(run: ConformanceRun) -> str:
    day = (run.finished_at or run.created_at).strftime("%Y%m%d")
    return f"neomesh-conformance-{run.pk}-{run.mailbox.mailbox_id}-{day}.zip"


def evidence_zip(run: ConformanceRun) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.html", report_html(run))
        archive.writestr("run.json", json.dumps(run_document(run), indent=2, ensure_ascii=False))
    return buffer.getvalue()


def _zip_problem(data: bytes) -> str | None:
    return None if zipfile.is_zipfile(io.BytesIO(data)) else "it is not a zip archive"


def attach_to_task(run: ConformanceRun):
    """Keep the pack as witness-test evidence on the run's onboarding task (once)."""
    from portal.audit.services import Actor
    from portal.onboarding.evidence import CheckedFile, FileType, evidence_add
    from portal.onboarding.models import EvidenceKind

    if run.task is None or run.evidence_id:
        return run.evidence
    # The onboarding app accepts documents people upload; this archive is made by NeoMesh itself,
    # so it is described here and checked the same way (its content must be what it claims).
    zip_type = FileType("zip", "Zip archive", "application/zip", _zip_problem)
    data = evidence_zip(run)
    problem = _zip_problem(data)
    if problem:
        raise ValueError(f"The evidence pack is broken: {problem}")
    evidence = evidence_add(
        plan=run.task.plan,
        task=run.task,
        kind=EvidenceKind.WITNESS_TEST,
        checked=CheckedFile(filename=zip_filename(run), file_type=zip_type, data=data),
        title=f"Conformance self-test run {run.pk}: {run.get_status_display()} ({run.summary})"[
            :200
        ],
        actor=Actor.person(user=run.started_by),
    )
    run.evidence = evidence
    run.save(update_fields=["evidence", "updated_at"])
    return evidence
