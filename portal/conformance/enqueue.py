"""Putting conformance runs on the queue: the task path and the enqueue helper, in one place.

`services.py` enqueues through here; `tasks.py` runs the services (no file circle).
"""

from __future__ import annotations

from portal.lib.taskqueue import enqueue

RUN_TASK = "portal.conformance.tasks.run_suite"


def enqueue_run(run_pk: int) -> str:
    return enqueue(RUN_TASK, run_pk, group="conformance")
