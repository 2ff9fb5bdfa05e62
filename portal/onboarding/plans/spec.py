"""The shape of a plan template: phases, tasks and decision points, as plain frozen data.

A template never changes a plan already made from it: `services.plan_create` copies every task and
decision into the plan's own rows, together with the template's key and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Where NHS England wants things sent (onboarding playbook, "Contacts").
NATIONAL_SERVICE_DESK = "ssd.nationalservicedesk@nhs.net"
ITOC = "itoc.supportdesk@nhs.net"
DOS_URL = "https://onboarding.prod.api.platform.nhs.uk"
MAILBOX_FORM_URL = (
    "https://digital.nhs.uk/services/message-exchange-for-social-care-and-health-mesh/"
    "messaging-exchange-for-social-care-and-health-apply-for-a-mailbox"
)
LIVE_ENDPOINT = "https://mesh-sync.spineservices.nhs.uk"
INT_ENDPOINT = "https://msg.intspineservices.nhs.uk"


@dataclass(frozen=True)
class TaskSpec:
    """One task. `days` is the working days it is expected to take once its dependencies are done:
    NHS England's published turnaround when `published`, otherwise our planning estimate. None means
    no due date of its own (recurring or optional work)."""

    key: str
    ref: str
    phase: int
    title: str
    guidance: str
    evidence: str = ""
    sent_to: str = ""
    days: int | None = None
    published: bool = False
    turnaround: str = ""
    depends_on: tuple[str, ...] = ()
    branch: str = ""
    decision: str = ""
    required: bool = True
    check: str = ""
    evidence_kind: str = ""
    review_months: int | None = None
    correspondence: str = ""


@dataclass(frozen=True)
class OptionSpec:
    """One answer. `invalidates` names the evidence kinds this answer makes stale: evidence of
    those kinds uploaded before the answer is withdrawn and never attached to an email again."""

    key: str
    label: str
    branches: tuple[str, ...]
    summary: str
    invalidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecisionSpec:
    """A fork: the option chosen enables its branches; tasks of every other branch become n/a."""

    key: str
    phase: int
    question: str
    guidance: str
    options: tuple[OptionSpec, ...]
    answers: str = ""  # the task whose correspondence carries NHS England's reply


@dataclass(frozen=True)
class PlanTemplate:
    key: str
    version: int
    name: str
    summary: str
    phases: tuple[tuple[int, str], ...]
    tasks: tuple[TaskSpec, ...]
    decisions: tuple[DecisionSpec, ...] = ()
    changes: tuple[str, ...] = field(default=())  # one line per version, newest last

    def task(self, key: str) -> TaskSpec:
        return next(spec for spec in self.tasks if spec.key == key)


def template_problems(template: PlanTemplate, *, checks, evidence_kinds, correspondence_kinds):
    """Everything wrong with a template's data, as sentences (empty when it is consistent)."""
    problems = []
    keys = [spec.key for spec in template.tasks]
    phases = {number for number, _ in template.phases}
    decisions = {decision.key: decision for decision in template.decisions}
    if len(set(keys)) != len(keys):
        problems.append("task keys are not unique")
    seen: set[str] = set()
    for spec in template.tasks:
        for dependency in spec.depends_on:
            if dependency not in seen:
                problems.append(
                    f"{spec.key} depends on {dependency}, which does not come before it"
                )
        seen.add(spec.key)
        if spec.phase not in phases:
            problems.append(f"{spec.key} is in unknown phase {spec.phase}")
        if spec.check and spec.check not in checks:
            problems.append(f"{spec.key} has unknown check {spec.check}")
        if spec.evidence_kind and spec.evidence_kind not in evidence_kinds:
            problems.append(f"{spec.key} has unknown evidence kind {spec.evidence_kind}")
        if spec.correspondence and spec.correspondence not in correspondence_kinds:
            problems.append(f"{spec.key} has unknown correspondence {spec.correspondence}")
        if bool(spec.branch) != bool(spec.decision):
            problems.append(f"{spec.key} needs both a branch and a decision, or neither")
        if spec.decision and spec.decision not in decisions:
            problems.append(f"{spec.key} refers to unknown decision {spec.decision}")
        elif spec.decision:
            branches = {b for option in decisions[spec.decision].options for b in option.branches}
            if spec.branch not in branches:
                problems.append(f"{spec.key} is in branch {spec.branch}, which no option enables")
        if spec.days is not None and spec.days < 0:
            problems.append(f"{spec.key} has negative days")
    for decision in template.decisions:
        if decision.phase not in phases:
            problems.append(f"decision {decision.key} is in unknown phase {decision.phase}")
        if decision.answers and decision.answers not in keys:
            problems.append(f"decision {decision.key} answers unknown task {decision.answers}")
        for option in decision.options:
            for kind in option.invalidates:
                if kind not in evidence_kinds:
                    problems.append(
                        f"option {option.key} of {decision.key} invalidates unknown evidence {kind}"
                    )
    return problems
