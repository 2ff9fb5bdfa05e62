"""Onboarding models: plans and their tasks and decisions; evidence, correspondence, the IP
allow-list register and readiness-gate overrides."""

from .plans import (
    CLOSED_STATUSES,
    Decision,
    Plan,
    PlanQuerySet,
    Task,
    TaskCheck,
    TaskQuerySet,
    TaskStatus,
)
from .records import (
    AllowListEntry,
    Correspondence,
    CorrespondenceKind,
    Evidence,
    EvidenceKind,
    GateOverride,
)

__all__ = [
    "CLOSED_STATUSES",
    "AllowListEntry",
    "Correspondence",
    "CorrespondenceKind",
    "Decision",
    "Evidence",
    "EvidenceKind",
    "GateOverride",
    "Plan",
    "PlanQuerySet",
    "Task",
    "TaskCheck",
    "TaskQuerySet",
    "TaskStatus",
]
