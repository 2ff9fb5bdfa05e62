"""Evidence files: checked against the type they claim, stored privately under generated names.

A file's claimed type comes from its extension; its content must agree (a "PDF" starts with %PDF-,
a PNG with the PNG signature, a text or .eml file is text...). The uploaded filename is kept only for
display: storage names are generated, so no upload can choose a path.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import transaction

from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.lib import payloads

from .errors import OnboardingError
from .models import Evidence, EvidenceKind, Plan, Task

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ACCEPTED = "PDF, PNG, JPEG, text (.txt, .csv, .eml), Word (.docx) or Excel (.xlsx)"


class EvidenceRejected(Exception):
    """The file cannot be kept as evidence; the message says why."""


def max_bytes() -> int:
    return getattr(settings, "ONBOARDING_EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)


def _signature(prefix: bytes, what: str) -> Callable[[bytes], str | None]:
    def check(data: bytes) -> str | None:
        return None if data.startswith(prefix) else what

    return check


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return "it contains binary data, not text"
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    return None


def _email(data: bytes) -> str | None:
    problem = _text(data)
    if problem:
        return problem
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not (message["From"] or message["Subject"]) or message.defects:
        return "it has no email headers (From, Subject)"
    return None


def _office(folder: str, what: str) -> Callable[[bytes], str | None]:
    def check(data: bytes) -> str | None:
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return what
        if "[Content_Types].xml" not in names or not any(n.startswith(folder) for n in names):
            return what
        return None

    return check


@dataclass(frozen=True)
class FileType:
    key: str
    label: str
    content_type: str
    problem: Callable[[bytes], str | None]


FILE_TYPES = {
    ".pdf": FileType(
        "pdf",
        "PDF",
        "application/pdf",
        _signature(b"%PDF-", "a PDF starts with %PDF-, and this file does not"),
    ),
    ".png": FileType(
        "png",
        "PNG image",
        "image/png",
        _signature(b"\x89PNG\r\n\x1a\n", "it does not start with the PNG signature"),
    ),
    ".jpg": FileType(
        "jpeg",
        "JPEG image",
        "image/jpeg",
        _signature(b"\xff\xd8\xff", "it does not start with the JPEG signature"),
    ),
    ".txt": FileType("txt", "text file", "text/plain", _text),
    ".csv": FileType("csv", "CSV file", "text/csv", _text),
    ".eml": FileType("eml", "email (.eml)", "message/rfc822", _email),
    ".docx": FileType(
        "docx",
        "Word document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _office("word/", "it is not a Word document package"),
    ),
    ".xlsx": FileType(
        "xlsx",
        "Excel workbook",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _office("xl/", "it is not an Excel workbook package"),
    ),
}
FILE_TYPES[".jpeg"] = FILE_TYPES[".jpg"]
BY_KEY = {file_type.key: file_type for file_type in FILE_TYPES.values()}


@dataclass(frozen=True)
class CheckedFile:
    filename: str
    file_type: FileType
    data: bytes


def display_filename(name: str) -> str:
    """The uploaded name without any path or control characters, for display and downloads only."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip()
    return name[:200] or "evidence"


def check_upload(upload) -> CheckedFile:
    """Read an uploaded file and check it is what it claims to be; raises EvidenceRejected."""
    name = display_filename(upload.name)
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    file_type = FILE_TYPES.get(extension)
    if file_type is None:
        shown = f"{extension} files" if extension else "Files without an extension"
        raise EvidenceRejected(f"{shown} are not accepted as evidence: upload {ACCEPTED}.")
    limit = max_bytes()
    if upload.size > limit:
        raise EvidenceRejected(
            f"{name} is {upload.size / 1024 / 1024:.1f} MB; the limit is {limit // 1024 // 1024} MB."
        )
    data = b"".join(upload.chunks())
    if not data:
        raise EvidenceRejected(f"{name} is empty.")
    problem = file_type.problem(data)
    if problem:
        raise EvidenceRejected(
            f"{name} is not what it claims to be: {problem}. Upload the real {file_type.label}, "
            "not a renamed or damaged file."
        )
    return CheckedFile(filename=name, file_type=file_type, data=data)


# Evidence that lapses whatever task it is kept on: the DSPT is renewed every year.
ANNUAL_KINDS = {EvidenceKind.DSPT: 12}


def review_months_needed(kind: str, task: Task | None) -> int | None:
    """How often evidence of `kind` kept on `task` must be renewed, when it lapses (else None):
    such evidence is kept only with its review date."""
    if task is not None and task.review_months and kind == task.evidence_kind:
        return task.review_months
    return ANNUAL_KINDS.get(kind)


def text_file(filename: str, text: str) -> CheckedFile:
    """Evidence made from typed text (NHS England's reply pasted into a decision)."""
    return CheckedFile(filename=filename, file_type=FILE_TYPES[".txt"], data=text.encode("utf-8"))


@transaction.atomic
def evidence_add(
    *,
    plan: Plan,
    checked: CheckedFile,
    kind: str,
    title: str,
    task: Task | None = None,
    review_date: date | None = None,
    actor: Actor = SYSTEM,
) -> Evidence:
    user = actor.user
    months = review_months_needed(kind, task)
    if months and review_date is None:
        raise OnboardingError(
            f"The {EvidenceKind(kind).label} lapses (it is renewed every {months} months): give "
            "the date it must be renewed by."
        )
    stored = payloads.store_stream(io.BytesIO(checked.data), "evidence")
    try:
        evidence = Evidence.objects.create(
            plan=plan,
            task=task,
            kind=kind,
            title=title,
            original_filename=checked.filename,
            stored_name=stored.name,
            file_type=checked.file_type.key,
            size=stored.size,
            sha256=stored.sha256,
            review_date=review_date,
            uploaded_by=user,
        )
    except Exception:
        payloads.delete_payload(stored.name)
        raise
    record(
        action="onboarding.evidence_uploaded",
        actor=actor,
        obj=evidence,
        detail=f"{evidence.get_kind_display()}, {stored.size} bytes, sha256 {stored.sha256}",
    )
    return evidence


def evidence_bytes(evidence: Evidence) -> bytes:
    with payloads.open_payload(evidence.stored_name) as handle:
        return handle.read()


def content_type(evidence: Evidence) -> str:
    return (
        BY_KEY[evidence.file_type].content_type
        if evidence.file_type in BY_KEY
        else ("application/octet-stream")
    )
