"""Evidence files are what they claim to be, and are stored under generated names."""

from __future__ import annotations

import io
import zipfile

import pytest

from portal.audit.models import AuditRecord
from portal.lib import payloads
from portal.onboarding.evidence import (
    EvidenceRejected,
    check_upload,
    display_filename,
    evidence_bytes,
)

from .helpers import PDF, PNG, add_evidence, make_plan, upload

pytestmark = pytest.mark.django_db


def _office(folder: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{folder}document.xml", "<doc/>")
    return buffer.getvalue()


EML = b"From: ssd.nationalservicedesk@nhs.net\r\nSubject: CS0123456\r\n\r\nYour certificate remains valid.\r\n"


@pytest.mark.parametrize(
    ("name", "content", "file_type"),
    [
        ("tcc.pdf", PDF, "pdf"),
        ("screen.PNG", PNG, "png"),
        ("photo.jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 16, "jpeg"),
        ("notes.txt", "Signed by Dr Ann Example – 2026".encode(), "txt"),
        ("ips.csv", b"address,purpose\n203.0.113.8,NAT\n", "csv"),
        ("reply.eml", EML, "eml"),
        ("agreement.docx", _office("word/"), "docx"),
        ("hazard-log.xlsx", _office("xl/"), "xlsx"),
    ],
)
def test_it_accepts_files_that_are_what_they_claim(name, content, file_type):
    checked = check_upload(upload(name, content))
    assert checked.file_type.key == file_type and checked.data == content


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "tcc.pdf",
            b"MZ\x90\x00 this is an executable",
            "tcc.pdf is not what it claims to be: a PDF starts with %PDF-",
        ),
        ("tcc.pdf", PNG, "a PDF starts with %PDF-, and this file does not"),
        ("screen.png", PDF, "it does not start with the PNG signature"),
        ("photo.jpg", b"GIF89a", "it does not start with the JPEG signature"),
        ("notes.txt", b"\x00\x01binary", "it contains binary data, not text"),
        ("notes.txt", b"caf\xe9", "it is not UTF-8 text"),
        ("reply.eml", b"just some words, no headers", "it has no email headers"),
        ("agreement.docx", PDF, "it is not a Word document package"),
        ("hazard-log.xlsx", _office("word/"), "it is not an Excel workbook package"),
        ("setup.exe", b"MZ", ".exe files are not accepted as evidence"),
        ("README", b"text", "Files without an extension are not accepted"),
        ("empty.pdf", b"", "empty.pdf is empty."),
    ],
)
def test_it_rejects_files_that_are_not_what_they_claim(name, content, message):
    with pytest.raises(EvidenceRejected) as excinfo:
        check_upload(upload(name, content))
    assert message in str(excinfo.value)


def test_it_refuses_files_over_the_size_limit(settings):
    settings.ONBOARDING_EVIDENCE_MAX_BYTES = 1024 * 1024
    with pytest.raises(EvidenceRejected, match=r"big.pdf is 2.0 MB; the limit is 1 MB"):
        check_upload(upload("big.pdf", PDF + b"0" * (2 * 1024 * 1024)))


def test_it_stores_evidence_privately_under_a_generated_name():
    plan = make_plan()
    evidence = add_evidence(plan, name="../../etc/passwd.pdf")
    assert evidence.original_filename == "passwd.pdf"
    assert evidence.stored_name.startswith("evidence/") and "passwd" not in evidence.stored_name
    assert (payloads.root() / evidence.stored_name).stat().st_mode & 0o777 == 0o600
    assert evidence_bytes(evidence) == PDF and len(evidence.sha256) == 64
    assert AuditRecord.objects.filter(action="onboarding.evidence_uploaded").exists()


def test_it_cleans_names_for_display():
    assert display_filename('C:\\Users\\me\\"tcc"\x07.pdf') == "tcc.pdf"
    assert display_filename("") == "evidence"
