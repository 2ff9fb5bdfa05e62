"""Onboarding services: make plans from templates, move tasks, record decisions, keep the register."""

from __future__ import annotations

import ipaddress
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.certificates.models import Certificate
from portal.mailboxes.models import Environment, Mailbox, Organisation

from . import checks
from .errors import OnboardingError
from .evidence import CheckedFile, evidence_add, text_file
from .models import (
    CLOSED_STATUSES,
    AllowListEntry,
    Correspondence,
    Decision,
    EvidenceKind,
    Plan,
    Task,
    TaskStatus,
)
from .plans import PlanTemplate
from .workdays import add_working_days


def _check_mailbox(
    mailbox: Mailbox | None, organisation: Organisation, environment: str, what: str
):
    if mailbox is None:
        return
    if mailbox.organisation_id != organisation.pk or mailbox.environment != environment:
        raise OnboardingError(
            f"{mailbox.mailbox_id} is not a {environment} mailbox of {organisation.name}; choose "
            f"the {what}."
        )


@transaction.atomic
def plan_create(
    *,
    template: PlanTemplate,
    organisation: Organisation,
    environment: str = Environment.LIVE,
    start_date: date | None = None,
    owner=None,
    target_mailbox: Mailbox | None = None,
    integration_mailbox: Mailbox | None = None,
    actor: Actor = SYSTEM,
) -> Plan:
    """A new plan holding its own copy of the template's tasks and decisions."""
    user = actor.user
    if Plan.objects.filter(organisation=organisation, environment=environment).exists():
        raise OnboardingError(
            f"{organisation.name} already has a {environment} plan: open it instead of starting another."
        )
    _check_mailbox(target_mailbox, organisation, environment, "mailbox in the target environment")
    _check_mailbox(
        integration_mailbox, organisation, Environment.INTEGRATION, "integration mailbox"
    )
    plan = Plan.objects.create(
        organisation=organisation,
        environment=environment,
        title=template.name,
        summary=template.summary,
        template_key=template.key,
        template_version=template.version,
        phases=[list(phase) for phase in template.phases],
        start_date=start_date or timezone.localdate(),
        target_mailbox=target_mailbox,
        integration_mailbox=integration_mailbox,
        created_by=user,
    )
    decisions = {
        spec.key: Decision.objects.create(
            plan=plan,
            key=spec.key,
            phase=spec.phase,
            question=spec.question,
            guidance=spec.guidance,
            options=[
                {
                    "key": o.key,
                    "label": o.label,
                    "branches": list(o.branches),
                    "summary": o.summary,
                    "invalidates": list(o.invalidates),
                }
                for o in spec.options
            ],
        )
        for spec in template.decisions
    }
    tasks: dict[str, Task] = {}
    for position, spec in enumerate(template.tasks, start=1):
        tasks[spec.key] = Task.objects.create(
            plan=plan,
            key=spec.key,
            ref=spec.ref,
            position=position,
            phase=spec.phase,
            title=spec.title,
            guidance=spec.guidance,
            evidence_hint=spec.evidence,
            sent_to=spec.sent_to,
            turnaround_days=spec.days,
            turnaround_published=spec.published,
            turnaround_note=spec.turnaround,
            required=spec.required,
            branch=spec.branch,
            decision=decisions.get(spec.decision),
            system_check=spec.check,
            evidence_kind=spec.evidence_kind,
            review_months=spec.review_months,
            correspondence_kind=spec.correspondence,
            owner=owner,
        )
        tasks[spec.key].depends_on.set([tasks[key] for key in spec.depends_on])
    for spec in template.decisions:
        if spec.answers:
            decisions[spec.key].answers = tasks[spec.answers]
            decisions[spec.key].save(update_fields=["answers"])
    plan_suggest_due_dates(plan=plan, today=plan.start_date)
    record(
        action="onboarding.plan_created",
        actor=actor,
        obj=plan,
        detail=f"from template {template.key} version {template.version}",
    )
    return plan


def plan_suggest_due_dates(*, plan: Plan, today: date | None = None) -> int:
    """Suggest due dates for open tasks from their dependencies and turnaround (working days).

    A task starts when its open dependencies are due (or today); it is due `turnaround_days` working
    days later. A task waiting on NHS England counts from the day it was sent. Dates a person set
    by hand are kept. Returns how many tasks changed.
    """
    today = today or timezone.localdate()
    tasks = list(plan.tasks.prefetch_related("depends_on").order_by("position"))
    ready: dict[int, date] = {}  # task id -> the date its dependents may start
    changed = 0
    for task in tasks:
        if task.is_closed:
            done_on = timezone.localdate(task.completed_at) if task.completed_at else today
            ready[task.pk] = min(done_on, today)
            continue
        starts = max([today, *(ready[d.pk] for d in task.depends_on.all() if d.pk in ready)])
        due = task.due_date
        if not task.due_date_manual:
            if task.status == TaskStatus.WAITING_NHS and task.waiting_since:
                starts = task.waiting_since
            days = task.turnaround_days
            due = add_working_days(starts, days) if days is not None else None
        if due != task.due_date:
            task.due_date = due
            task.save(update_fields=["due_date", "updated_at"])
            changed += 1
        ready[task.pk] = due or starts
    return changed


def task_blockers(task: Task, now=None) -> list[str]:
    """Why this task cannot be marked done yet (empty when it can)."""
    blockers = []
    if task.decision_id and not task.decision.is_recorded:
        blockers.append(f"Record the decision first: {task.decision.question}")
    for dependency in task.depends_on.all():
        if dependency.status not in CLOSED_STATUSES:
            blockers.append(f"Finish {dependency.ref} “{dependency.title}” first.")
    if task.evidence_kind:
        blockers.extend(_evidence_blockers(task))
    problem = checks.check_problem(task, now)
    if problem:
        blockers.append(problem)
    return blockers


def _evidence_blockers(task: Task) -> list[str]:
    label = EvidenceKind(task.evidence_kind).label
    current = [e for e in task.evidence.all() if e.kind == task.evidence_kind]
    if not current:
        return [f"Attach the {label} to this task first."]
    if task.review_months:
        # Evidence that lapses counts only with the date it lapses on.
        current = [e for e in current if e.review_date is not None]
        if not current:
            return [
                f"The attached {label} has no review date, and it lapses every "
                f"{task.review_months} months: upload it again with the date it must be renewed by."
            ]
    if all(evidence.is_lapsed() for evidence in current):
        return [
            f"The attached {label} lapsed on {current[0].review_date:%d %B %Y}: attach the current one."
        ]
    return []


@transaction.atomic
def task_set_status(*, task: Task, status: str, reason: str = "", actor: Actor = SYSTEM) -> Task:
    """Move a task to `status`, enforcing dependencies, evidence and the system checks."""
    user = actor.user
    if status == task.status:
        return task
    reopened = task.completed_by_check
    if status == TaskStatus.DONE:
        blockers = task_blockers(task)
        if blockers:
            raise OnboardingError(" ".join(blockers))
        task.completed_at, task.completed_by = timezone.now(), user
    else:
        task.completed_at = task.completed_by = None
    task.checked_evidence = ""
    if reopened:
        # NeoMesh completed it; only a fact recorded from now on completes it again (selfcheck).
        task.reopened_at = timezone.now()
    if status == TaskStatus.NOT_APPLICABLE:
        _mark_not_applicable(task, user, reason)
    task.closed_by_decision = False
    task.waiting_since = timezone.localdate() if status == TaskStatus.WAITING_NHS else None
    task.status = status
    task.save()
    if reopened:
        record(
            action="onboarding.task_reopened",
            actor=actor,
            obj=task,
            reason=reason.strip(),
            detail=f"{task.ref} reopened ({task.get_status_display()}) after NeoMesh completed it",
        )
    if status == TaskStatus.NOT_APPLICABLE:
        gate = "; the readiness gate no longer waits for it" if task.required else ""
        record(
            action="onboarding.task_not_applicable",
            actor=actor,
            obj=task,
            reason=reason.strip(),
            detail=f"{task.ref} marked not applicable{gate}",
        )
    plan_suggest_due_dates(plan=task.plan)
    return task


# Marking a required task not applicable opens the readiness gate without it: an admin's call.
OVERRIDE_PERMISSION = "onboarding.override_gate"
MIN_OVERRIDE_REASON = 20


def may_mark_not_applicable(task: Task, user) -> bool:
    """Whether `user` may mark this task not applicable by hand (decisions close tasks themselves)."""
    if task.system_check:
        return False
    return not task.required or (user is not None and user.has_perm(OVERRIDE_PERMISSION))


def _mark_not_applicable(task: Task, user, reason: str) -> None:
    if task.system_check:
        raise OnboardingError(
            "NeoMesh checks this task against the system, so it cannot be marked not applicable. "
            "If the live mailbox must transfer before it is done, an admin can override the "
            "readiness gate with a reason."
        )
    reason = reason.strip()
    if not may_mark_not_applicable(task, user):
        raise OnboardingError(
            f"{task.ref} is required before live transfers, so marking it not applicable would "
            "open the readiness gate without it: only an admin who may override the gate can do "
            "that. Finish the task, or ask a mailbox admin."
        )
    if not reason:
        raise OnboardingError(
            "Say why this task is not applicable: the reason is kept in its notes."
        )
    if task.required and len(reason) < MIN_OVERRIDE_REASON:
        raise OnboardingError(
            f"Write the reason in full (at least {MIN_OVERRIDE_REASON} characters): the readiness "
            "gate stops waiting for this required task, and the reason is audited."
        )
    who = user.get_username() if user else "NeoMesh"
    note = f"Not applicable ({who}, {timezone.localdate():%d %B %Y}): {reason}"
    task.notes = f"{task.notes.rstrip()}\n\n{note}".strip()


@transaction.atomic
def task_update(
    *,
    task: Task,
    status: str,
    owner=None,
    due_date: date | None = None,
    notes: str = "",
    reason: str = "",
    actor: Actor = SYSTEM,
) -> Task:
    """The task form: owner, due date and notes, then the status change with its rules."""
    if due_date != task.due_date:
        task.due_date, task.due_date_manual = due_date, due_date is not None
    task.owner, task.notes = owner, notes
    task.save()
    return task_set_status(task=task, status=status, reason=reason, actor=actor)


@transaction.atomic
def task_link_certificate(*, task: Task, certificate: Certificate, user=None) -> Task:
    """Link the CSR made in NeoMesh to a CSR task, after checking its CN for this plan."""
    if task.system_check not in checks.CSR_CHECKS:
        raise OnboardingError("Only a CSR task takes a certificate.")
    problem = checks.certificate_unusable(certificate)
    if problem:
        raise OnboardingError(problem)
    mailbox, env = checks.csr_mailbox(task)
    problem = checks.certificate_cn_problem(
        certificate, mailbox=mailbox, organisation=task.plan.organisation, env=env
    )
    if problem:
        raise OnboardingError(problem)
    task.certificate = certificate
    task.save(update_fields=["certificate", "updated_at"])
    return task


@transaction.atomic
def decision_record(
    *,
    decision: Decision,
    option_key: str,
    reply_text: str,
    ticket_reference: str = "",
    reply_file: CheckedFile | None = None,
    actor: Actor = SYSTEM,
) -> Decision:
    """Record NHS England's answer: the chosen option's branches stay, every other branch is n/a."""
    user = actor.user
    option = decision.option(option_key)
    if option is None:
        raise OnboardingError("Choose one of the decision's options.")
    if not reply_text.strip():
        raise OnboardingError("Paste NHS England's reply: it is kept as the decision's evidence.")
    previous = decision.chosen
    checked = reply_file or text_file(f"reply-{decision.key}.txt", reply_text)
    decision.reply_evidence = evidence_add(
        plan=decision.plan,
        checked=checked,
        kind=EvidenceKind.REPLY,
        task=decision.answers,
        title=f"NHS England's reply: {decision.question}"[:200],
        actor=actor,
    )
    decision.chosen, decision.reply_text = option_key, reply_text.strip()
    decision.ticket_reference = ticket_reference.strip()
    decision.recorded_by, decision.recorded_at = user, timezone.now()
    decision.save()
    _reply_to_waiting_letters(decision, actor)
    _apply_branches(decision, set(option["branches"]))
    withdrawn = _withdraw_invalidated(decision, option, previous)
    _complete_answered_task(decision, user)
    plan_suggest_due_dates(plan=decision.plan)
    record(
        action="onboarding.decision_recorded",
        actor=actor,
        obj=decision,
        detail=f"{decision.question} → {option['label']}{withdrawn}",
        reason=decision.reply_text[:2000],
    )
    return decision


def _reply_to_waiting_letters(decision: Decision, actor: Actor) -> None:
    """The reply that answers the question answers its email too: nothing is left "waiting for a
    reply", and nobody records the same reply a second time on the email."""
    if decision.answers is None:
        return
    waiting = decision.answers.correspondence.filter(status=Correspondence.Status.SENT)
    for letter in waiting:
        letter.status, letter.replied_at = Correspondence.Status.REPLIED, decision.recorded_at
        letter.reply_text = decision.reply_text
        letter.ticket_reference = decision.ticket_reference or letter.ticket_reference
        letter.save()
        record(
            action="onboarding.correspondence_replied",
            actor=actor,
            obj=letter,
            detail=f"with the decision '{decision.question}'; "
            f"ticket {letter.ticket_reference or 'not given'}",
        )


def _withdraw_invalidated(decision: Decision, option: dict, previous: str) -> str:
    """Withdraw the evidence the answer invalidates (Scenario B: the old conformance certificate),
    so no email attaches it again; a changed answer restores what an earlier one withdrew.

    Only evidence uploaded before the answer is withdrawn: the new certificate comes after it.
    Returns a note for the audit record.
    """
    if previous == decision.chosen:
        return ""  # the same answer again (a corrected reply): keep what it withdrew
    notes = []
    restored = list(decision.withdrawn_evidence.all())
    for evidence in restored:
        evidence.withdrawn_at = evidence.withdrawn_by_decision = None
        evidence.save(update_fields=["withdrawn_at", "withdrawn_by_decision"])
    if restored:
        notes.append("restored: " + ", ".join(e.original_filename for e in restored))
    kinds = option.get("invalidates", [])
    stale = decision.plan.evidence.filter(
        kind__in=kinds, withdrawn_at__isnull=True, uploaded_at__lte=decision.recorded_at
    )
    names = []
    for evidence in stale:
        evidence.withdrawn_at, evidence.withdrawn_by_decision = decision.recorded_at, decision
        evidence.save(update_fields=["withdrawn_at", "withdrawn_by_decision"])
        names.append(evidence.original_filename)
    if names:
        notes.append("withdrawn as invalidated: " + ", ".join(names))
    return "".join(f"; {note}" for note in notes)


def _apply_branches(decision: Decision, enabled: set[str]) -> None:
    for task in decision.tasks.all():
        if task.branch not in enabled and not task.is_closed:
            task.status, task.closed_by_decision = TaskStatus.NOT_APPLICABLE, True
            task.save()
        elif task.branch in enabled and task.closed_by_decision:
            task.status, task.closed_by_decision = TaskStatus.TODO, False
            task.save()


def _complete_answered_task(decision: Decision, user) -> None:
    """The question's task is done once its answer is recorded (if nothing else holds it up)."""
    task = decision.answers
    if task is not None and not task.is_closed and not task_blockers(task):
        task.status, task.completed_at, task.completed_by = TaskStatus.DONE, timezone.now(), user
        task.waiting_since = None
        task.save()


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or CIDR range, with the mistakes people make named in plain English."""
    value = (text or "").strip()
    example = "in the form a.b.c.d or a.b.c.d/28 (IPv6 too), your egress address"
    if not value:
        raise OnboardingError(f"Enter an IP address or CIDR range, {example}.")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            raise OnboardingError(_host_bits_message(value)) from None
        raise OnboardingError(f"{value} is not an IP address or CIDR range, {example}.") from None
    refusal = _refusal(network)
    if refusal:
        raise OnboardingError(refusal)
    return network


def _host_bits_message(value: str) -> str:
    """Suggest only what would be accepted: the range if it is, else the single address."""
    suggestion = ipaddress.ip_network(value, strict=False)
    if _refusal(suggestion) is None:
        return (
            f"{value} has host bits set: the range it is in is {suggestion}. Enter that, or "
            "the single address without a prefix."
        )
    address = ipaddress.ip_network(value.partition("/")[0])
    refusal = _refusal(address)
    if refusal:
        return refusal
    return (
        f"{value} has host bits set, and the range it is in ({suggestion}) is too wide for an "
        f"allow-list. Enter the single address {address.network_address}, or a small range "
        f"(at most /{_WIDEST[address.version]})."
    )


# The widest range an allow-list entry may be, by IP version.
_WIDEST = {4: 16, 6: 32}

# Ranges reserved for documentation and examples (RFC 5737, RFC 3849, RFC 9637): never a real
# client's address, whatever a Python version's ``is_global`` says of them.
DOCUMENTATION_RANGES = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
]


def _refusal(network) -> str | None:
    """Why a network cannot be on the allow-list, in plain English; None when it can."""
    if network.prefixlen < _WIDEST[network.version]:
        return (
            f"{network} is too wide for an allow-list: list your egress addresses or a small range."
        )
    for documentation in DOCUMENTATION_RANGES:
        if network.version == documentation.version and network.overlaps(documentation):
            what = "is" if network.subnet_of(documentation) else "includes addresses"
            return (
                f"{network} {what} reserved for documentation and examples ({documentation}), "
                "not a public address: list the public address NHS England would see your "
                "client connect from."
            )
    first, last = network.network_address, network.broadcast_address
    public = (
        first.is_global
        and last.is_global
        and not network.is_multicast
        and not network.is_reserved
        and not _within(network, INTERNAL_RANGES)
    )
    if not public:
        return (
            f"{network} is not a public address: list the public address NHS England would see "
            "your client connect from (your NAT or egress address)."
        )
    return None


def network_text(network) -> str:
    """How the register stores a network: a single address without its /32 or /128."""
    return str(network.network_address) if network.num_addresses == 1 else str(network)


INTERNAL_RANGES = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


def _within(network, ranges) -> bool:
    return any(network.version == other.version and network.overlaps(other) for other in ranges)


@transaction.atomic
def allowlist_add(
    *, organisation: Organisation, environment: str, address: str, purpose: str, user=None
) -> AllowListEntry:
    network = parse_network(address)
    if not purpose.strip():
        raise OnboardingError("Say what the address is for, for example 'production NAT gateway'.")
    existing = AllowListEntry.objects.filter(organisation=organisation, environment=environment)
    for entry in existing:
        other = ipaddress.ip_network(entry.network)
        if other.version == network.version and (
            network.subnet_of(other) or other.subnet_of(network)
        ):
            same = "is already in" if other == network else "overlaps an entry in"
            raise OnboardingError(
                f"{network_text(network)} {same} the register: {entry.network} ({entry.purpose})."
            )
    try:
        with transaction.atomic():
            return AllowListEntry.objects.create(
                organisation=organisation,
                environment=environment,
                network=network_text(network),
                purpose=purpose.strip(),
                added_by=user,
            )
    except IntegrityError:
        raise OnboardingError(f"{network_text(network)} is already in the register.") from None
