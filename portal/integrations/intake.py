"""Watched-directory intake: files handed in by a pipeline become messages through the one outbox
service (`message_queue_send`, with every check the form and the API have).

Layout per intake: `OUT/<name>` (the data) and `OUT/<name>.json` (the control file, written last:
its arrival says the data is complete; `.part` files are ignored). The control file names `to`,
`workflow_id`, `local_id` (required, the idempotency key) and optionally `subject`, `filename`,
`content_type`, `compressed`, `encrypted`. The Java MESH client's pair is read too: `OUT/<id>.dat`
with its XML control file `OUT/<id>.ctl` (`DTSControl`: `To_DTS`, `WorkflowId`, `LocalId`,
`Subject`, `Encrypted`, `IsCompressed` as Y/N; `From_DTS`, when given, must be this mailbox). Each pair moves to `SENT/` or `FAILED/` with a
`<name>.result.json` giving the NeoMesh message (then the MESH id once MESH accepted it) or the
reason. Idempotent on (mailbox, local id) across restarts and several workers.
"""

from __future__ import annotations

import json
import os
import uuid
import xml.etree.ElementTree as ET
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
    return _checked(document)


def _checked(document: dict) -> dict:
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


# The Java client's control file elements, as the JSON control file's fields; the others it may
# carry (Version, AddressType, DTSId, PartnerId, ProcessId, DataChecksum, Compress) are not ours
# to act on: NeoMesh compresses every transfer anyway.
CTL_FIELDS = {
    "To_DTS": "to",
    "WorkflowId": "workflow_id",
    "LocalId": "local_id",
    "Subject": "subject",
}
CTL_FLAGS = {"Encrypted": "encrypted", "IsCompressed": "compressed"}
CTL_KNOWN = {*CTL_FIELDS, *CTL_FLAGS, "From_DTS", "MessageType", "Version", "AddressType"} | {
    "DTSId",
    "PartnerId",
    "ProcessId",
    "DataChecksum",
    "Compress",
}


def read_ctl(path: Path, mailbox_id: str) -> dict:
    """The Java client's XML control file as the JSON control file's fields (then checked alike)."""
    if path.stat().st_size > MAX_CONTROL_BYTES:
        raise ControlRejected(f"The control file is larger than {MAX_CONTROL_BYTES // 1024} KiB.")
    raw = path.read_bytes()
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise ControlRejected("The control file may not declare a DOCTYPE or entities.")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ControlRejected(f"The control file is not well-formed XML ({exc}).") from None
    if root.tag != "DTSControl" or any(len(child) for child in root):
        raise ControlRejected("The control file must be one <DTSControl> element of simple fields.")
    values = {child.tag: (child.text or "").strip() for child in root}
    unknown = sorted(set(values) - CTL_KNOWN)
    if unknown:
        raise ControlRejected(f"The control file has unknown elements: {', '.join(unknown)}.")
    if values.get("MessageType", "Data").lower() != "data":
        raise ControlRejected("Only <MessageType>Data</MessageType> can be sent from a folder.")
    sender = values.get("From_DTS", "")
    if sender and sender.upper() != mailbox_id.upper():
        raise ControlRejected(
            f"<From_DTS> is {sender}, but this folder sends from mailbox {mailbox_id}."
        )
    document = {field: values[tag] for tag, field in CTL_FIELDS.items() if values.get(tag)}
    for tag, field in CTL_FLAGS.items():
        flag = values.get(tag, "N").upper() or "N"
        if flag not in {"Y", "N"}:
            raise ControlRejected(f"<{tag}> must be Y or N.")
        document[field] = flag == "Y"
    return _checked(document)


def _pairs(out: Path):
    """(data, control, reader) for each control file in OUT/: `<name>.json` beside `<name>`, and
    the Java client's `<id>.ctl` beside `<id>.dat`."""
    for control in sorted(out.glob("*.json")):
        yield control.with_name(control.name[: -len(".json")]), control, "json"
    for control in sorted(out.glob("*.ctl")):
        yield control.with_suffix(".dat"), control, "ctl"


def _dirs(intake: Intake) -> tuple[Path, Path, Path]:
    root = Path(intake.path)
    return root / "OUT", root / "SENT", root / "FAILED"


def intake_scan(*, intake: Intake) -> dict[str, int]:
    """Pick up every complete pair in OUT/; returns counts. Safe on several workers at once."""
    out, sent, failed = _dirs(intake)
    for folder in (out, sent, failed):
        folder.mkdir(parents=True, exist_ok=True)
    counts = {"queued": 0, "failed": 0, "skipped": 0}
    for data, control, kind in _pairs(out):
        if not data.is_file() or data.name.endswith(".part"):
            continue  # the data is not there (yet): the control file is written last
        try:
            outcome = _take(intake, data, control, kind)
        except FileNotFoundError:
            outcome = "skipped"  # another worker moved it meanwhile
        counts[outcome] += 1
    intake_results(intake=intake)
    return counts


def _take(intake: Intake, data: Path, control: Path, kind: str = "json") -> str:
    from portal.messaging.services import SendRejected, message_queue_send

    _, sent, failed = _dirs(intake)
    try:
        if kind == "ctl":
            document = read_ctl(control, intake.mailbox.mailbox_id)
        else:
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


def _control_name(target: Path, control: Path) -> Path:
    """Where the control file goes beside the moved data: `<name>.json`, or the Java client's
    `<id>.ctl` beside `<id>.dat`."""
    if control.suffix == ".ctl":
        return target.with_name(target.name.removesuffix(".dat") + ".ctl")
    return target.with_name(target.name + ".json")


def _free_name(folder: Path, name: str, control: Path) -> Path:
    target = folder / name
    if not target.exists() and not _control_name(target, control).exists():
        return target
    stem, dot, suffix = name.rpartition(".") if control.suffix == ".ctl" else (name, "", "")
    return folder / f"{stem}.{uuid.uuid4().hex[:8]}{dot}{suffix}"


def _write_json(path: Path, document: dict) -> None:
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    with part.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)


def _move(data: Path, control: Path, folder: Path, result: dict) -> None:
    """Data and control file into SENT/ or FAILED/, with the result file beside them."""
    target = _free_name(folder, data.name, control)
    # The control file first: of two workers moving the same pair, only one renames it (the other
    # gets FileNotFoundError and writes nothing).
    os.rename(control, _control_name(target, control))
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
        for result in sent.glob(f"{row.name.removesuffix('.dat')}*.result.json"):
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
