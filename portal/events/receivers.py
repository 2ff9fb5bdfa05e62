"""Events raised from signals of the layers below (which cannot import this app)."""

from __future__ import annotations

from django.dispatch import receiver

from portal.audit.verify import chain_verified

from .kinds import Severity
from .services import problem_raise, problem_resolve

AUDIT_CHAIN_PROBLEM = "audit:chain"


@receiver(chain_verified, dispatch_uid="events_audit_chain")
def audit_chain_verified(sender, report, **kwargs) -> None:
    """In the transaction that records the verification: broken raises, intact again resolves."""
    if report.ok:
        problem_resolve(
            problem_key=AUDIT_CHAIN_PROBLEM,
            kind="audit.chain_intact",
            severity=Severity.INFO,
            summary=f"The audit chain verifies again ({report.checked} records checked).",
        )
        return
    problem_raise(
        problem_key=AUDIT_CHAIN_PROBLEM,
        kind="audit.chain_broken",
        severity=Severity.CRITICAL,
        summary=f"The audit chain verification failed: {report.problem}",
        data={"first_broken_seq": report.first_broken_seq, "problem": report.problem},
    )
