"""Correspondence with NHS England, generated from the plan's data and downloaded as .eml drafts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from email.message import EmailMessage
from email.policy import SMTP

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from meshcore import certificates as mc_certs
from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.certificates.models import Certificate
from portal.mailboxes.models import Mailbox

from .errors import OnboardingError
from .evidence import content_type, display_filename, evidence_bytes
from .guard import PRIVATE_KEY_RE, secret_problem
from .models import (
    AllowListEntry,
    Correspondence,
    CorrespondenceKind,
    Evidence,
    EvidenceKind,
    Plan,
    Task,
    TaskCheck,
    TaskStatus,
)
from .plans.spec import ITOC, MAILBOX_FORM_URL, NATIONAL_SERVICE_DESK
from .services import plan_suggest_due_dates, task_set_status

Kind = CorrespondenceKind


@dataclass(frozen=True)
class Letter:
    """One kind of email. `days` and `published` are the wait shown for a letter without a task;
    a letter written for a task takes the task's turnaround instead."""

    to: tuple[str, ...]
    subject: str
    days: int
    published: bool
    cc: tuple[str, ...] = ()
    csr: str = ""  # "target" or "integration": attach that mailbox's CSR; never sent without it
    conformance: bool = False  # attach the plan's Technical Conformance Certificate
    conformance_required: bool = False  # ...and never send it without one


LETTERS = {
    Kind.NSD_CHANGE_QUERY: Letter(
        to=(NATIONAL_SERVICE_DESK,),
        cc=(ITOC,),
        days=10,
        published=False,
        conformance=True,
        subject="MESH API client rewritten from TypeScript to Python: is our Technical Conformance "
        "Certificate still valid, and what are our production steps? ({organisation}, {ods})",
    ),
    Kind.INT_MAILBOX_REQUEST: Letter(
        to=(ITOC,),
        days=5,
        published=True,
        subject="MESH API mailbox request (Path to Live - integration): {organisation} ({ods})",
    ),
    Kind.LIVE_MAILBOX_REQUEST: Letter(
        to=(),
        days=5,
        published=True,
        conformance=True,
        subject="MESH mailbox application (Live, API): {organisation} ({ods})",
    ),
    Kind.INT_CSR_REQUEST: Letter(
        to=(ITOC,),
        days=5,
        published=True,
        csr="integration",
        subject="MESH API certificate request (integration): {cn}",
    ),
    Kind.LIVE_CSR_REQUEST: Letter(
        to=(NATIONAL_SERVICE_DESK,),
        days=5,
        published=True,
        csr="target",
        conformance=True,
        conformance_required=True,
        subject="MESH API certificate request (live): {cn}",
    ),
}


def conformance_certificate(plan: Plan) -> Evidence | None:
    """The plan's newest Technical Conformance Certificate that has neither lapsed nor been
    withdrawn (in Scenario B NHS England's answer withdraws the old one)."""
    candidates = plan.evidence.filter(
        kind=EvidenceKind.CONFORMANCE_CERTIFICATE, withdrawn_at__isnull=True
    )
    return next((e for e in candidates.order_by("-uploaded_at", "-pk") if e.is_current()), None)


def csr_certificate(plan: Plan, which: str) -> Certificate | None:
    """The CSR to attach: the one linked to the plan's CSR task, else the newest with the right CN."""
    check = TaskCheck.INTEGRATION_CSR if which == "integration" else TaskCheck.TARGET_CSR
    mailbox = plan.integration_mailbox if which == "integration" else plan.target_mailbox
    task = plan.tasks.filter(system_check=check, certificate__isnull=False).first()
    if task is not None:
        return Certificate.objects.defer("private_key").get(pk=task.certificate_id)
    if mailbox is None:
        return None
    expected = mc_certs.expected_cn(mailbox.mailbox_id, plan.organisation.ods_code)
    newest = mailbox.certificates.defer("private_key").filter(common_name=expected)
    return newest.order_by("-created_at").first()


def _cn(mailbox: Mailbox | None, ods: str, placeholder: str) -> str:
    mailbox_id = mailbox.mailbox_id if mailbox else placeholder
    return f"{mailbox_id}.{ods}{mc_certs.CN_SUFFIX}"


def letter_context(plan: Plan, user=None) -> dict:
    organisation, target = plan.organisation, plan.target_mailbox
    integration = plan.integration_mailbox
    workflows = integration.workflows.order_by("workflow_id", "direction") if integration else []
    return {
        "plan": plan,
        "organisation": organisation,
        "ods": organisation.ods_code,
        "environment": plan.get_environment_display(),
        "target_mailbox": target,
        "integration_mailbox": integration,
        "target_cn": _cn(target, organisation.ods_code, "{LIVE MAILBOX ID}"),
        "integration_cn": _cn(integration, organisation.ods_code, "{INTEGRATION MAILBOX ID}"),
        "application": settings.MESH_APPLICATION_NAME,
        "conformance": conformance_certificate(plan),
        # The change query says what the code assessment found, once it is done.
        "assessment": plan.tasks.filter(key="assess-code").first(),
        "addresses": AllowListEntry.objects.filter(
            organisation=organisation, environment=plan.environment
        ),
        "workflows": workflows,
        "mailbox_form_url": MAILBOX_FORM_URL,
        "sender": (user.get_full_name() or user.get_username()) if user else "",
        "sender_email": getattr(user, "email", "") if user else "",
    }


def _fill(correspondence: Correspondence, user) -> None:
    letter = LETTERS[correspondence.kind]
    context = letter_context(correspondence.plan, user)
    cn = context["integration_cn"] if letter.csr == "integration" else context["target_cn"]
    correspondence.to_addresses = ", ".join(letter.to)
    correspondence.cc_addresses = ", ".join(letter.cc)
    correspondence.subject = letter.subject.format(
        organisation=context["organisation"].name, ods=context["ods"], cn=cn
    )[:300]
    template = f"onboarding/email/{correspondence.kind}.txt"
    correspondence.body = render_to_string(template, context).strip() + "\n"
    task = correspondence.task
    if task is not None and task.turnaround_days is not None:
        days, published = task.turnaround_days, task.turnaround_published
    else:
        days, published = letter.days, letter.published
    correspondence.turnaround_days, correspondence.turnaround_published = days, published
    correspondence.certificate = (
        csr_certificate(correspondence.plan, letter.csr) if letter.csr else None
    )


def _attach_conformance(correspondence: Correspondence) -> None:
    if LETTERS[correspondence.kind].conformance:
        evidence = conformance_certificate(correspondence.plan)
        correspondence.attachments.set([evidence] if evidence else [])


@transaction.atomic
def correspondence_draft(
    *, plan: Plan, kind: str, task: Task | None = None, actor: Actor = SYSTEM
) -> Correspondence:
    """A new draft, written from the plan's organisation, ODS code, mailboxes, CN and evidence."""
    user = actor.user
    if kind not in LETTERS:
        raise OnboardingError("NeoMesh has no letter of that kind.")
    task = task or plan.tasks.filter(correspondence_kind=kind).first()
    correspondence = Correspondence(plan=plan, task=task, kind=kind, created_by=user)
    _fill(correspondence, user)
    correspondence.save()
    _attach_conformance(correspondence)
    record(action="onboarding.correspondence_drafted", actor=actor, obj=correspondence)
    return correspondence


@transaction.atomic
def correspondence_regenerate(*, correspondence: Correspondence, user=None) -> Correspondence:
    """Write a draft again from the plan's current data (edits to it are replaced)."""
    if correspondence.status != Correspondence.Status.DRAFT:
        raise OnboardingError("Only a draft can be written again; this one has been sent.")
    _fill(correspondence, user)
    correspondence.save()
    _attach_conformance(correspondence)
    return correspondence


def missing_attachments(correspondence: Correspondence, *, required_only=False) -> list[str]:
    """What a request should carry and does not (a CSR request without its CSR is sent back).

    With `required_only`, just what it must never be sent without: the CSR of a CSR request, and
    the conformance certificate of the live CSR request.
    """
    letter = LETTERS[correspondence.kind]
    missing = []
    if letter.csr and correspondence.certificate_id is None:
        missing.append(f"the CSR for the {letter.csr.replace('target', 'live')} mailbox")
    wanted = letter.conformance_required if required_only else letter.conformance
    attached = correspondence.attachments.filter(kind=EvidenceKind.CONFORMANCE_CERTIFICATE)
    if wanted and not any(evidence.is_current() for evidence in attached):
        missing.append("the Technical Conformance Certificate")
    return missing


def withdrawn_attachments(correspondence: Correspondence) -> list[Evidence]:
    """Attached evidence that NHS England's answer has since invalidated."""
    return list(correspondence.attachments.filter(withdrawn_at__isnull=False))


def _refuse_withdrawn(correspondence: Correspondence) -> None:
    withdrawn = withdrawn_attachments(correspondence)
    if withdrawn:
        names = ", ".join(evidence.original_filename for evidence in withdrawn)
        raise OnboardingError(
            f"The attachment {names} was withdrawn: NHS England's answer invalidated it. Write "
            "the draft again to attach the current one."
        )


def _record_ticket_on_certificate(correspondence: Correspondence) -> str:
    """Keep the service desk's reference on the CSR the email carried; a note for the audit."""
    ticket = correspondence.ticket_reference
    if not ticket or correspondence.certificate_id is None:
        return ""
    certificate = Certificate.objects.defer("private_key").get(pk=correspondence.certificate_id)
    if certificate.service_desk_ticket == ticket:
        return ""
    certificate.service_desk_ticket = ticket
    certificate.save(update_fields=["service_desk_ticket"])
    return f"; ticket {ticket} recorded on the certificate {certificate.common_name}"


def _local_datetime(day: date) -> datetime:
    if day == timezone.localdate():
        return timezone.now()
    return timezone.make_aware(datetime.combine(day, time(12, 0)))


@transaction.atomic
def correspondence_mark_sent(
    *,
    correspondence: Correspondence,
    sent_on: date,
    ticket_reference: str = "",
    actor: Actor = SYSTEM,
) -> Correspondence:
    user = actor.user
    if correspondence.status != Correspondence.Status.DRAFT:
        raise OnboardingError("This email is already marked as sent.")
    _refuse_withdrawn(correspondence)
    missing = missing_attachments(correspondence, required_only=True)
    if missing:
        raise OnboardingError(
            "This email must carry " + " and ".join(missing) + ": attach it to the plan, write "
            "the draft again, and send that."
        )
    if sent_on > timezone.localdate():
        raise OnboardingError("The date sent cannot be in the future.")
    correspondence.status, correspondence.sent_by = Correspondence.Status.SENT, user
    correspondence.sent_at = _local_datetime(sent_on)
    correspondence.ticket_reference = ticket_reference.strip() or correspondence.ticket_reference
    correspondence.save()
    ticket_note = _record_ticket_on_certificate(correspondence)
    task = correspondence.task
    if task is not None and not task.is_closed:
        task_set_status(task=task, status=TaskStatus.WAITING_NHS, actor=actor)
        task.waiting_since = sent_on
        task.save(update_fields=["waiting_since", "updated_at"])
        plan_suggest_due_dates(plan=task.plan)
    record(
        action="onboarding.correspondence_sent",
        actor=actor,
        obj=correspondence,
        detail=f"to {correspondence.to_addresses or 'a web form'}{ticket_note}",
    )
    return correspondence


@transaction.atomic
def correspondence_record_reply(
    *,
    correspondence: Correspondence,
    reply_text: str,
    replied_on: date,
    ticket_reference: str = "",
    actor: Actor = SYSTEM,
) -> Correspondence:
    if correspondence.status == Correspondence.Status.DRAFT:
        raise OnboardingError("Mark the email as sent before recording the reply.")
    if not reply_text.strip():
        raise OnboardingError("Paste NHS England's reply.")
    if replied_on < timezone.localdate(correspondence.sent_at):
        raise OnboardingError("The reply cannot come before the email was sent.")
    correspondence.status = Correspondence.Status.REPLIED
    correspondence.reply_text, correspondence.replied_at = (
        reply_text.strip(),
        _local_datetime(replied_on),
    )
    correspondence.ticket_reference = ticket_reference.strip() or correspondence.ticket_reference
    correspondence.save()
    ticket_note = _record_ticket_on_certificate(correspondence)
    task = correspondence.task
    if task is not None and task.status == TaskStatus.WAITING_NHS:
        task_set_status(task=task, status=TaskStatus.IN_PROGRESS, actor=actor)
    record(
        action="onboarding.correspondence_replied",
        actor=actor,
        obj=correspondence,
        detail=f"ticket {correspondence.ticket_reference or 'not given'}{ticket_note}",
    )
    return correspondence


def _refuse_secrets(what: str, data: bytes | str, organisation) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if PRIVATE_KEY_RE.search(text):
        raise OnboardingError(f"{what} contains a private key: NeoMesh never puts one in an email.")
    # The one refusal that names nothing (portal/onboarding/guard.py).
    problem = secret_problem(text, organisation)
    if problem:
        raise OnboardingError(f"{what}: {problem}")


def eml_filename(correspondence: Correspondence) -> str:
    name = f"{correspondence.kind}-{correspondence.plan.organisation.ods_code}-{correspondence.pk}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".eml"


def correspondence_eml(correspondence: Correspondence, *, sender: str = "") -> bytes:
    """The draft as an .eml file with its attachments: the CSR (never the key) and the evidence."""
    organisation = correspondence.plan.organisation
    # RFC 5322's hard line limit: a long subject stays on one line instead of being folded
    # awkwardly around an unbreakable CN.
    message = EmailMessage(policy=SMTP.clone(max_line_length=998))
    if sender:
        message["From"] = sender
    for header, value in (("To", correspondence.to_addresses), ("Cc", correspondence.cc_addresses)):
        if value.strip():
            message[header] = value
    message["Subject"] = correspondence.subject
    # Outlook opens a message marked unsent as a draft, ready to send.
    message["X-Unsent"] = "1"
    _refuse_secrets("The email's text", correspondence.body, organisation)
    if correspondence.status == Correspondence.Status.DRAFT:
        _refuse_withdrawn(correspondence)  # one already sent stays the record of what was sent
    message.set_content(correspondence.body)
    if correspondence.certificate_id:
        certificate = Certificate.objects.only("common_name", "csr_pem").get(
            pk=correspondence.certificate_id
        )
        csr = certificate.csr_pem.encode()
        _refuse_secrets("The CSR", csr, None)
        filename = re.sub(r"[^A-Za-z0-9.-]", "_", certificate.common_name)[:150] + ".csr"
        message.add_attachment(csr, maintype="application", subtype="pkcs10", filename=filename)
    for evidence in correspondence.attachments.all():
        data = evidence_bytes(evidence)
        _refuse_secrets(f"The attachment {evidence.original_filename}", data, None)
        maintype, _, subtype = content_type(evidence).partition("/")
        if maintype == "message":
            # A message/rfc822 part may not be base64-encoded: attach a saved email as a file.
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype,
            filename=display_filename(evidence.original_filename),
        )
    return message.as_bytes()
