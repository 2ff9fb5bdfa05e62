"""Watched-directory intake: files handed in by a pipeline become messages through the one outbox
service (`message_queue_send`, with every check the form and the API have).

Layout per intake: `OUT/<name>` (the data) and `OUT/<name>.json` (the control file, written last:
its arrival says the data is complete; `.part` files are ignored). The control file names `to`,
`workflow_id`, `local_id` (required, the idempotency key) and optionally `subject`, `filename`,
`content_type`, `compressed`, `encrypted`. Each pair moves to `SENT/` or `FAILED/` with a
`<name>.result.json` giving the NeoMesh message (then the MESH id once MESH accepted it) or the
reason. Idempotent on (mailbox, local id) across restarts and several workers.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit.services import Actor

from .models import Intake, IntakeFile

MAX_CONTROL_BYTES = 64 * 1024
# A claim older than this belongs to a worker that died before queueing: another takes it over.
STALE_CLAIM = timedelta(minutes=10)
FIELDS = {
    "to",
    "workflow_id",
    "local_id",
    "subject",
    "filename",
    "content_type",
    "compressed",
    "encrypted",
}


class ControlRejected(Exception):
    """The control file is unusable; the text says why."""


def _intake_actor(intake: Intake) -> Actor:
    """The worker that reads the watched directory, named with it in the audit trail."""
    return Actor(
        kind="worker", label=f"{Actor.worker().label} (watched directory {intake.path})"[:200]
    )


def read_control(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_CONTROL_BYTES:
            raise ControlRejected(
                f"The control file is larger than {MAX_CONTROL_BYTES // 1024} KiB."
            )
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlRejected(f"The control file is not valid JSON ({exc}).") from None
    if not isinstance(document, dict):
        raise ControlRejected("The control file must be a JSON object.")
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise ControlRejected(f"The control file has unknown fields: {', '.join(unknown)}.")
    for field in ("to", "workflow_id", "local_id"):
        if not isinstance(document.get(field), str) or not document[field].strip():
            raise ControlRejected(f'The control file must name "{field}" (text).')
    for field in ("subject", "filename", "content_type"):
        if not isinstance(document.get(field, ""), str):
            raise ControlRejected(f'"{field}" must be text.')
    for field in ("compressed", "encrypted"):
        if not isinstance(document.get(field, False), bool):
            raise ControlRejected(f'"{field}" must be true or false.')
    return document


def _dirs(intake: Intake) -> tuple[Path, Path, Path]:
    root = Path(intake.path)
    return root / "OUT", root / "SENT", root / "FAILED"


def intake_scan(*, intake: Intake) -> dict[str, int]:
    """Pick up every complete pair in OUT/; returns counts. Safe on several workers at once."""
    out, sent, failed = _dirs(intake)
    for folder in (out, sent, failed):
        folder.mkdir(parents=True, exist_ok=True)
    counts = {"queued": 0, "failed": 0, "skipped": 0}
    for control in sorted(out.glob("*.json")):
        data = control.with_name(control.name[: -len(".json")])
        if not data.is_file() or data.name.endswith(".part"):
            continue  # the data is not there (yet): the control file is written last
        try:
            outcome = _take(intake, data, control)
        except FileNotFoundError:
            outcome = "skipped"  # another worker moved it meanwhile
        counts[outcome] += 1
    intake_results(intake=intake)
    return counts


def _take(intake: Intake, data: Path, control: Path) -> str:
    from portal.messaging.services import SendRejected, message_queue_send

    _, sent, failed = _dirs(intake)
    try:
        document = read_control(control)
    except ControlRejected as exc:
        _move(data, control, failed, {"status": "failed", "reason": str(exc)})
        return "failed"
    local_id = document["local_id"].strip()[:300]
    row = _claim(intake, local_id, data.name)
    if row is None:
        return "skipped"  # another worker holds it
    if row.message_id is not None:  # queued before (a restart after the queueing committed)
        _move(data, control, sent, _result(row))
        return "skipped"
    try:
        with transaction.atomic(), data.open("rb") as source:
            message = message_queue_send(
                mailbox=intake.mailbox,
                recipient=document["to"],
                workflow_id=document["workflow_id"],
                source=source,
                size=data.stat().st_size,
                filename=document.get("filename") or data.name,
                subject=document.get("subject", ""),
                local_id=local_id,
                content_type=document.get("content_type", ""),
                compressed=document.get("compressed", False),
                encrypted=document.get("encrypted", False),
                actor=_intake_actor(intake),
            )
            IntakeFile.objects.filter(pk=row.pk).update(
                message=message, state=IntakeFile.State.QUEUED
            )
    except SendRejected as exc:
        IntakeFile.objects.filter(pk=row.pk).delete()  # a corrected file may use the same local id
        _move(data, control, failed, {"status": "failed", "local_id": local_id, "reason": str(exc)})
        return "failed"
    row.refresh_from_db()
    _move(data, control, sent, _result(row))
    return "queued"


def _claim(intake: Intake, local_id: str, name: str) -> IntakeFile | None:
    now = timezone.now()
    try:
        with transaction.atomic():
            return IntakeFile.objects.create(mailbox=intake.mailbox, local_id=local_id, name=name)
    except IntegrityError:
        row = IntakeFile.objects.get(mailbox=intake.mailbox, local_id=local_id)
    if row.message_id is not None:
        return row
    if row.claimed_at < now - STALE_CLAIM and IntakeFile.objects.filter(
        pk=row.pk, claimed_at=row.claimed_at, message__isnull=True
    ).update(claimed_at=now):
        row.refresh_from_db()
        return row
    return None


def _result(row: IntakeFile) -> dict:
    message = row.message
    result = {"status": row.state, "local_id": row.local_id, "neomesh_message": row.message_id}
    if message is not None:
        result["mesh_message_id"] = message.mesh_message_id or ""
        result["message_status"] = message.status
        if message.failure_reason:
            result["reason"] = message.failure_reason
    return result


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists() and not (folder / f"{name}.json").exists():
        return target
    return folder / f"{name}.{uuid.uuid4().hex[:8]}"


def _write_json(path: Path, document: dict) -> None:
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    with part.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)


def _move(data: Path, control: Path, folder: Path, result: dict) -> None:
    """Data and control file into SENT/ or FAILED/, with the result file beside them."""
    target = _free_name(folder, data.name)
    # The control file first: of two workers moving the same pair, only one renames it (the other
    # gets FileNotFoundError and writes nothing).
    os.rename(control, target.with_name(target.name + ".json"))
    os.rename(data, target)
    _write_json(target.with_name(target.name + ".result.json"), result)


def intake_results(*, intake: Intake) -> int:
    """Rewrite the result files of queued files MESH has now accepted (or that failed)."""
    from portal.messaging.models import Status

    _, sent, _ = _dirs(intake)
    done = 0
    rows = IntakeFile.objects.filter(
        mailbox=intake.mailbox, state=IntakeFile.State.QUEUED
    ).select_related("message")
    for row in rows.filter(
        message__status__in=[Status.ACCEPTED, Status.ACKNOWLEDGED, Status.FAILED]
    )[:500]:
        state = (
            IntakeFile.State.FAILED
            if row.message.status == Status.FAILED
            else IntakeFile.State.SENT
        )
        row.state = state
        for result in sent.glob(f"{row.name}*.result.json"):
            try:
                if json.loads(result.read_text()).get("local_id") == row.local_id:
                    _write_json(result, _result(row))
            except (OSError, ValueError):
                continue
        IntakeFile.objects.filter(pk=row.pk).update(state=state)
        done += 1
    return done


def intakes_scan() -> int:
    """Scheduled every minute: scan each enabled watched directory."""
    count = 0
    for intake in Intake.objects.filter(enabled=True).select_related("mailbox"):
        count += sum(intake_scan(intake=intake).values())
    return count
