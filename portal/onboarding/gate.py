"""The readiness gate: whether a mailbox may transfer messages now, the one home of that rule.

The checks, in order: a disabled mailbox never transfers (no override lifts that); a mailbox that is
not live transfers; a live mailbox with an admin's override (a written reason) transfers; otherwise
a live mailbox transfers only when it is the target mailbox of its organisation's live plan, that
plan has every required task done (or not applicable), and a certificate with its CN is active and
within its validity dates.

`transfer_blocked_reason` runs before every send and poll, so it stops at the first reason and costs
at most three small queries. `gate_report` lists every reason, for the pages; both walk the same
checks, so a page never says "transfers allowed" while the workers refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from meshcore import certificates as mc_certs
from portal.audit.actors import SYSTEM
from portal.audit.services import Actor, record
from portal.certificates.models import Certificate
from portal.mailboxes.models import Environment, Mailbox

from .errors import OnboardingError
from .models import CLOSED_STATUSES, GateOverride, Plan


def _active_override(mailbox: Mailbox) -> GateOverride | None:
    return GateOverride.objects.filter(mailbox_id=mailbox.pk, revoked_at__isnull=True).first()


def _live_plan(mailbox: Mailbox) -> Plan | None:
    required_open = Q(tasks__required=True) & ~Q(tasks__status__in=CLOSED_STATUSES)
    return (
        Plan.objects.filter(organisation_id=mailbox.organisation_id, environment=Environment.LIVE)
        .select_related("organisation", "target_mailbox")
        .annotate(required_open=Count("tasks", filter=required_open))
        .first()
    )


def _certificate(mailbox: Mailbox) -> Certificate | None:
    fields = ("common_name", "not_before", "not_after", "status", "mailbox_id")
    return Certificate.objects.only(*fields).active_for(mailbox)


def _disabled_reason(mailbox: Mailbox) -> str | None:
    return None if mailbox.enabled else f"mailbox {mailbox.mailbox_id} is disabled"


def _plan_reason(mailbox: Mailbox, plan: Plan | None) -> str | None:
    if plan is None:
        return (
            f"live mailbox {mailbox.mailbox_id} has no live onboarding plan: start one under "
            "Onboarding, or ask an admin to override the readiness gate"
        )
    if plan.target_mailbox_id != mailbox.pk:
        if plan.target_mailbox_id:
            named = f"it is for {plan.target_mailbox.mailbox_id}"
            fix = "ask an admin to override the readiness gate"
        else:
            named, fix = "it names no live mailbox yet", "name it on the plan"
        return (
            f"live mailbox {mailbox.mailbox_id} is not the live mailbox of the plan “{plan.title}” "
            f"({named}): {fix}"
        )
    if plan.required_open:
        tasks = "task is" if plan.required_open == 1 else "tasks are"
        return (
            f"live mailbox {mailbox.mailbox_id} is not ready: {plan.required_open} required "
            f"onboarding {tasks} not done in the plan “{plan.title}”"
        )
    return None


def _certificate_reason(
    mailbox: Mailbox, certificate: Certificate | None, ods_code: str, now: datetime
) -> str | None:
    if certificate is None:
        return f"live mailbox {mailbox.mailbox_id} has no active certificate installed"
    expected = mc_certs.expected_cn(mailbox.mailbox_id, ods_code)
    if certificate.common_name != expected:
        return (
            f"live mailbox {mailbox.mailbox_id}'s active certificate is for "
            f"{certificate.common_name}, not {expected}"
        )
    if certificate.not_after is None or certificate.not_after <= now:
        return f"live mailbox {mailbox.mailbox_id}'s certificate has expired"
    if certificate.not_before is not None and certificate.not_before > now:
        return (
            f"live mailbox {mailbox.mailbox_id}'s certificate is not valid until "
            f"{timezone.localtime(certificate.not_before):%d %B %Y %H:%M}"
        )
    return None


def _live_reasons(mailbox: Mailbox, plan: Plan | None, now: datetime | None) -> Iterator[str]:
    """What holds a live mailbox, in order; lazily, so the first answer costs no more queries."""
    if reason := _plan_reason(mailbox, plan):
        yield reason
    ods_code = (plan or mailbox).organisation.ods_code
    reason = _certificate_reason(mailbox, _certificate(mailbox), ods_code, now or timezone.now())
    if reason:
        yield reason


def transfer_blocked_reason(mailbox: Mailbox, now: datetime | None = None) -> str | None:
    """None when the mailbox may transfer now; otherwise the first reason it may not."""
    if reason := _disabled_reason(mailbox):
        return reason
    if not mailbox.is_live or _active_override(mailbox) is not None:
        return None
    return next(_live_reasons(mailbox, _live_plan(mailbox), now), None)


@dataclass
class GateReport:
    mailbox: Mailbox
    plan: Plan | None
    reasons: list[str] = field(default_factory=list)
    override: GateOverride | None = None
    disabled: bool = False

    @property
    def blocked(self) -> bool:
        """As the workers decide: disabled, or held with no override (transfer_blocked_reason)."""
        return self.disabled or (bool(self.reasons) and self.override is None)


def gate_report(mailbox: Mailbox, now: datetime | None = None) -> GateReport:
    """Every reason the gate is closed (even when an override lets transfers through)."""
    plan = _live_plan(mailbox)
    report = GateReport(mailbox=mailbox, plan=plan, override=_active_override(mailbox))
    if reason := _disabled_reason(mailbox):
        report.disabled = True
        report.reasons.append(reason)
    report.reasons.extend(_live_reasons(mailbox, plan, now))
    return report


@transaction.atomic
def gate_override_create(*, mailbox: Mailbox, reason: str, actor: Actor = SYSTEM) -> GateOverride:
    user = actor.user
    if not mailbox.is_live:
        raise OnboardingError("Only a live mailbox has a readiness gate to override.")
    if len(reason.strip()) < 20:
        raise OnboardingError("Write the reason in full (at least 20 characters): it is audited.")
    try:
        with transaction.atomic():
            override = GateOverride.objects.create(
                mailbox=mailbox, reason=reason.strip(), created_by=user
            )
    except IntegrityError:
        raise OnboardingError(f"{mailbox.mailbox_id} already has an active override.") from None
    record(
        action="onboarding.gate_overridden",
        actor=actor,
        obj=override,
        reason=override.reason,
        detail=f"readiness gate overridden for {mailbox.mailbox_id}",
    )
    return override


@transaction.atomic
def gate_override_revoke(
    *, override: GateOverride, reason: str = "", actor: Actor = SYSTEM
) -> GateOverride:
    user = actor.user
    if not override.is_active:
        raise OnboardingError("This override was already revoked.")
    override.revoked_at, override.revoked_by = timezone.now(), user
    override.revoke_reason = reason.strip()
    override.save()
    record(
        action="onboarding.gate_override_revoked",
        actor=actor,
        obj=override,
        reason=override.revoke_reason,
        detail=f"readiness gate closed again for {override.mailbox.mailbox_id}",
    )
    return override
