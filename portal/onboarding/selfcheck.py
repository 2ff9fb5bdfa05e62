"""Tasks NeoMesh can check itself complete themselves when the fact they wait for is recorded.

The facts: an address recorded on the IP allow-list (`allow_list`), a key and CSR generated for
the plan's mailbox (`target_csr`, `integration_csr`: the CSR is linked to the task), and a
successful handshake with the plan's mailbox (`handshake`). The apps that record them send a
signal (`receivers.py`); the task is completed in the same transaction, only when nothing else
holds it up (`services.task_blockers`), with what NeoMesh found kept as `Task.checked_evidence`
and audited `onboarding.task_checked_done` as the worker. A person can reopen such a task (audited
`onboarding.task_reopened` as that person); then only a fact recorded after that completes it
again, so a reopened task is not closed behind the person's back by an old fact.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.audit.services import Actor, record
from portal.certificates.models import Certificate
from portal.mailboxes.models import Mailbox

from . import checks, services
from .errors import OnboardingError
from .models import AllowListEntry, Plan, Task, TaskCheck, TaskStatus

SELF_COMPLETING = (
    TaskCheck.ALLOW_LIST,
    TaskCheck.TARGET_CSR,
    TaskCheck.INTEGRATION_CSR,
    TaskCheck.HANDSHAKE,
)


def check_evidence(task: Task) -> str:
    """What NeoMesh found, in a line a person reads on the task page (its link is by kind)."""
    plan = task.plan
    if task.system_check == TaskCheck.ALLOW_LIST:
        entries = AllowListEntry.objects.filter(
            organisation_id=plan.organisation_id, environment=plan.environment
        )
        listed = ", ".join(f"{e.network} ({e.purpose})" for e in entries)
        text = f"Recorded on the {plan.get_environment_display().lower()} allow-list: {listed}"
    elif task.system_check in checks.CSR_CHECKS:
        certificate = task.certificate
        made = timezone.localtime(certificate.created_at)
        text = f"CSR {certificate.common_name} generated on {made:%d %B %Y %H:%M} and linked"
    elif task.system_check == TaskCheck.HANDSHAKE:
        mailbox = plan.target_mailbox
        at = timezone.localtime(mailbox.last_handshake_at)
        took = (
            f" in {mailbox.last_handshake_ms} ms" if mailbox.last_handshake_ms is not None else ""
        )
        text = f"Handshake with {mailbox.mailbox_id} succeeded on {at:%d %B %Y %H:%M}{took}"
    else:
        text = task.get_system_check_display()
    return text if len(text) <= 300 else text[:299] + "…"


@transaction.atomic
def plan_complete_checked(
    *,
    plan: Plan,
    kinds: tuple[str, ...] = SELF_COMPLETING,
    fact_at: datetime | None = None,
    actor: Actor | None = None,
) -> list[Task]:
    """Complete the plan's open tasks of `kinds` whose check passes and that nothing holds up.

    `fact_at` is when the fact was recorded; a task a person reopened after it (or with no fact
    at all: a dependency just done) is left for the person. Returns the tasks completed.
    """
    actor = actor or Actor.worker()
    done = []
    tasks = plan.tasks.open().filter(system_check__in=kinds).select_related("plan", "certificate")
    for task in tasks:
        if task.reopened_at is not None and (fact_at is None or fact_at <= task.reopened_at):
            continue
        if services.task_blockers(task):
            continue
        task.status, task.waiting_since = TaskStatus.DONE, None
        task.completed_at, task.completed_by = timezone.now(), None
        task.checked_evidence = check_evidence(task)
        task.save()
        record(
            action="onboarding.task_checked_done",
            actor=actor,
            obj=task,
            detail=f"{task.ref} done: NeoMesh checked it. {task.checked_evidence}",
        )
        done.append(task)
    if done:
        services.plan_suggest_due_dates(plan=plan)
    return done


def _plans(**filters):
    return Plan.objects.filter(**filters).select_related("organisation", "target_mailbox")


def handshake_recorded(*, mailbox: Mailbox) -> list[Task]:
    """A successful handshake: the handshake task of every plan whose target it is."""
    done = []
    for plan in _plans(target_mailbox=mailbox):
        done += plan_complete_checked(
            plan=plan, kinds=(TaskCheck.HANDSHAKE,), fact_at=timezone.now()
        )
    return done


def csr_recorded(*, certificate: Certificate) -> list[Task]:
    """A new CSR: linked to the open CSR task of each plan naming its mailbox, which it completes."""
    done = []
    mailbox_id = certificate.mailbox_id
    plans = _plans().filter(Q(target_mailbox_id=mailbox_id) | Q(integration_mailbox_id=mailbox_id))
    for plan in plans:
        for task in plan.tasks.open().filter(system_check__in=checks.CSR_CHECKS):
            mailbox, _ = checks.csr_mailbox(task)
            if mailbox is None or mailbox.pk != mailbox_id:
                continue
            try:
                services.task_link_certificate(task=task, certificate=certificate)
            except OnboardingError:
                continue  # a CN this plan cannot use: the task page says why when linked by hand
        done += plan_complete_checked(
            plan=plan, kinds=checks.CSR_CHECKS, fact_at=certificate.created_at
        )
    return done


def allowlist_recorded(*, entry: AllowListEntry) -> list[Task]:
    """A new address on the register: the allow-list task of the plan for its environment."""
    done = []
    for plan in _plans(organisation_id=entry.organisation_id, environment=entry.environment):
        done += plan_complete_checked(
            plan=plan, kinds=(TaskCheck.ALLOW_LIST,), fact_at=entry.added_at
        )
    return done
