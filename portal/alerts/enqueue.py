"""Putting alert notifications on the queue: the task path and the enqueue helper, in one place.

`services.py` enqueues through here; `tasks.py` runs the services (no file circle).
"""

from __future__ import annotations

from portal.lib.taskqueue import enqueue

SEND_TASK = "portal.alerts.tasks.send_notification"


def enqueue_send(notification_pk: int) -> str:
    return enqueue(SEND_TASK, notification_pk, group="alerts")
