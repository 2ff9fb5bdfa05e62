"""Worker entry points for alerts: thin, take ids, call a service. Safe to run twice."""

from __future__ import annotations

from django_q.tasks import async_task

from . import services


def enqueue_send(notification_pk: int) -> str:
    return async_task("portal.alerts.tasks.send_notification", notification_pk, group="alerts")


def send_notification(notification_pk: int) -> str:
    return services.notification_send(notification_id=notification_pk)


def sweep() -> dict:
    """Every minute: retry what is due, release what a dead worker held."""
    return services.notifications_sweep()


def send_digests() -> int:
    """Daily."""
    return services.digests_send()
