"""Putting deliveries on the queue: the task path and the enqueue helper, in one place.

`services.py` enqueues through here; `tasks.py` runs the services (no file circle).
"""

from __future__ import annotations

from portal.lib.taskqueue import enqueue

DELIVERY_TASK = "portal.integrations.tasks.run_delivery"


def enqueue_delivery(delivery_pk: int) -> str:
    return enqueue(DELIVERY_TASK, delivery_pk, group="deliver")
