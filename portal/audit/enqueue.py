"""Putting the audit app's work on the queue: the task path and the enqueue helper, in one place."""

from __future__ import annotations

from portal.lib.taskqueue import enqueue

VERIFY_TASK = "portal.audit.tasks.verify_chain"


def enqueue_verification() -> str:
    return enqueue(VERIFY_TASK, group="audit_verify")
