"""Builders for the onboarding tests."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from portal.audit.services import Actor
from portal.certificates.models import Certificate
from portal.certificates.services import certificate_create_csr
from portal.mailboxes.models import Environment
from portal.onboarding import services
from portal.onboarding.evidence import check_upload, evidence_add
from portal.onboarding.models import EvidenceKind, Plan, TaskStatus
from portal.onboarding.plans import TEMPLATES
from tests.factories import make_mailbox, make_organisation

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 20
LIVE_CN = "X26LIVE1.X26.api.mesh-client.nhs.uk"


def make_live_mailbox(mailbox_id: str = "X26LIVE1", **kwargs):
    kwargs.setdefault("environment", Environment.LIVE)
    kwargs.setdefault("password", "")
    kwargs.setdefault("shared_key", "")
    return make_mailbox(mailbox_id, workflows=(), **kwargs)


def make_int_mailbox(mailbox_id: str = "X26INT01", **kwargs):
    kwargs.setdefault("environment", Environment.INTEGRATION)
    return make_mailbox(mailbox_id, **kwargs)


def make_plan(template: str = "client-change", *, live=True, integration=True, **kwargs) -> Plan:
    kwargs.setdefault("organisation", make_organisation())
    if live and "target_mailbox" not in kwargs:
        kwargs["target_mailbox"] = make_live_mailbox()
    if integration and "integration_mailbox" not in kwargs:
        kwargs["integration_mailbox"] = make_int_mailbox()
    return services.plan_create(template=TEMPLATES[template], **kwargs)


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def add_evidence(
    plan,
    task=None,
    *,
    kind=EvidenceKind.CONFORMANCE_CERTIFICATE,
    name="tcc.pdf",
    content=PDF,
    review_date=None,
    user=None,
):
    return evidence_add(
        plan=plan,
        task=task,
        checked=check_upload(upload(name, content)),
        kind=kind,
        title=f"{EvidenceKind(kind).label}",
        review_date=review_date,
        actor=Actor.person(user=user),
    )


def close(task, status=TaskStatus.DONE):
    """Close a task directly, bypassing the rules (to set up a state)."""
    task.status = status
    task.completed_at = timezone.now() if status == TaskStatus.DONE else None
    task.save()
    return task


def close_all_required(plan):
    for task in plan.tasks.filter(required=True):
        close(task)


def install_certificate(mailbox, *, common_name=None, days=365) -> Certificate:
    """An active certificate row for the mailbox (the gate reads only its CN, status and expiry)."""
    certificate = certificate_create_csr(mailbox=mailbox)
    certificate.status = Certificate.Status.ACTIVE
    certificate.common_name = common_name or certificate.common_name
    certificate.not_after = timezone.now() + timedelta(days=days)
    certificate.save()
    return certificate


def task(plan, key):
    return plan.tasks.get(key=key)
