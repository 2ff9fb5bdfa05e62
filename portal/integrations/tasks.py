"""Worker entry points (django-q2): thin, take ids, call a service. Safe to run twice."""

from __future__ import annotations

from django_q.tasks import async_task

from . import services


def enqueue_delivery(delivery_pk: int) -> str:
    return async_task("portal.integrations.tasks.run_delivery", delivery_pk, group="deliver")


def run_delivery(delivery_pk: int) -> str:
    return services.delivery_run(delivery_id=delivery_pk)


def sweep_deliveries() -> int:
    return services.deliveries_sweep()


def scan_intakes() -> int:
    from .intake import intakes_scan

    return intakes_scan()
