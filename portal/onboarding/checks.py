"""Tasks tied to the system: NeoMesh checks the fact itself before such a task may be done."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from meshcore import certificates as mc_certs
from meshcore.errors import MeshValidationError
from portal.certificates.models import Certificate
from portal.mailboxes.models import HANDSHAKE_STALE_AFTER, Mailbox, Organisation

from .models import AllowListEntry, Plan, Task, TaskCheck

CSR_CHECKS = (TaskCheck.TARGET_CSR, TaskCheck.INTEGRATION_CSR)


def _env(plan: Plan) -> str:
    return plan.get_environment_display().lower()


def csr_mailbox(task: Task) -> tuple[Mailbox | None, str]:
    """The mailbox a CSR task's certificate must be for, and that mailbox's environment label."""
    if task.system_check == TaskCheck.INTEGRATION_CSR:
        return task.plan.integration_mailbox, "integration"
    return task.plan.target_mailbox, _env(task.plan)


UNUSABLE_STATUSES = (Certificate.Status.SUPERSEDED, Certificate.Status.EXPIRED)


def usable_certificates(queryset, now: datetime | None = None):
    """CSRs and certificates a task may still link: not superseded, expired or past their date."""
    now = now or timezone.now()
    return queryset.exclude(status__in=UNUSABLE_STATUSES).exclude(not_after__lte=now)


def certificate_unusable(certificate: Certificate, now: datetime | None = None) -> str | None:
    """Why a task may not link this certificate any more, or None."""
    if certificate.status in UNUSABLE_STATUSES or certificate.is_expired(now):
        state = "superseded" if certificate.status == Certificate.Status.SUPERSEDED else "expired"
        return (
            f"The certificate {certificate.common_name} is {state}: link the current CSR, or "
            "generate a new one under Certificates."
        )
    return None


def certificate_cn_problem(
    certificate: Certificate, *, mailbox: Mailbox | None, organisation: Organisation, env: str
) -> str | None:
    """Why this certificate's CN is wrong for `mailbox`, or None when it is right."""
    if mailbox is None:
        return f"Name the plan's {env} mailbox first: the CN must use its mailbox id."
    cn = certificate.common_name
    try:
        parsed = mc_certs.validate_cn(cn)
    except MeshValidationError:
        return (
            f"The CN {cn} is not in the MESH form MAILBOXID.ODSCODE{mc_certs.CN_SUFFIX}, so NHS "
            "England would refuse it."
        )
    if parsed.mailbox_id != mailbox.mailbox_id:
        other = Mailbox.objects.filter(mailbox_id=parsed.mailbox_id).first()
        whose = f", the {other.get_environment_display().lower()} mailbox's id," if other else ""
        return (
            f"The CN {cn} uses mailbox id {parsed.mailbox_id}{whose} but it must use the {env} "
            f"mailbox id {mailbox.mailbox_id}: mailbox ids differ per environment."
        )
    if parsed.ods_code != organisation.ods_code:
        return (
            f"The CN {cn} uses ODS code {parsed.ods_code}, but {organisation.name}'s ODS code is "
            f"{organisation.ods_code}."
        )
    if certificate.mailbox_id != mailbox.pk:
        return f"This CSR belongs to another mailbox, not the {env} mailbox {mailbox.mailbox_id}."
    return None


def _target_mailbox_problem(plan: Plan) -> str | None:
    mailbox = plan.target_mailbox
    if mailbox is None:
        return (
            f"Name the plan's {_env(plan)} mailbox first: a mailbox admin adds it under Mailboxes "
            "once NHS England has issued its id."
        )
    if mailbox.environment != plan.environment:
        return f"The plan's mailbox {mailbox.mailbox_id} is not a {_env(plan)} mailbox."
    return None


def _certificate_problem(plan: Plan, now: datetime) -> str | None:
    problem = _target_mailbox_problem(plan)
    if problem:
        return problem
    mailbox = plan.target_mailbox
    certificate = Certificate.objects.defer("private_key").active_for(mailbox)
    if certificate is None:
        return f"The {_env(plan)} mailbox {mailbox.mailbox_id} has no active certificate yet."
    problem = certificate_cn_problem(
        certificate, mailbox=mailbox, organisation=plan.organisation, env=_env(plan)
    )
    if problem:
        return problem
    if certificate.is_expired(now):
        return (
            f"The certificate of {mailbox.mailbox_id} expired on {certificate.not_after:%d %B %Y}."
        )
    if certificate.not_before is not None and certificate.not_before > now:
        return (
            f"The certificate of {mailbox.mailbox_id} is not valid until "
            f"{timezone.localtime(certificate.not_before):%d %B %Y %H:%M}."
        )
    return None


def _handshake_problem(plan: Plan, now: datetime) -> str | None:
    problem = _target_mailbox_problem(plan)
    if problem:
        return problem
    mailbox = plan.target_mailbox
    if mailbox.last_handshake_at is None:
        return (
            f"No handshake with {mailbox.mailbox_id} yet: a mailbox admin runs one from its page."
        )
    if mailbox.last_handshake_ok is not True:
        return f"The last handshake with {mailbox.mailbox_id} failed: fix it and try again."
    if mailbox.last_handshake_at < now - HANDSHAKE_STALE_AFTER:
        return (
            f"The last successful handshake with {mailbox.mailbox_id} is more than 24 hours old: "
            "run a new one."
        )
    return None


def check_problem(task: Task, now: datetime | None = None) -> str | None:
    """Why NeoMesh cannot confirm this task's fact yet, or None (also when it has no check)."""
    now = now or timezone.now()
    plan = task.plan
    if task.system_check == TaskCheck.TARGET_MAILBOX:
        return _target_mailbox_problem(plan)
    if task.system_check in CSR_CHECKS:
        mailbox, env = csr_mailbox(task)
        if mailbox is None:
            return f"Name the plan's {env} mailbox first: the CN must use its mailbox id."
        if task.certificate is None:
            return f"Link the CSR made in NeoMesh for the {env} mailbox to this task."
        return certificate_cn_problem(
            task.certificate, mailbox=mailbox, organisation=plan.organisation, env=env
        )
    if task.system_check == TaskCheck.TARGET_CERTIFICATE:
        return _certificate_problem(plan, now)
    if task.system_check == TaskCheck.ALLOW_LIST:
        entries = AllowListEntry.objects.filter(
            organisation_id=plan.organisation_id, environment=plan.environment
        )
        if not entries.exists():
            return f"Add the {_env(plan)} addresses to the IP allow-list register first."
    if task.system_check == TaskCheck.HANDSHAKE:
        return _handshake_problem(plan, now)
    return None
