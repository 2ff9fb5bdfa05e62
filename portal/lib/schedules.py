"""Every recurring job, created idempotently in one place (after migrate, or `setup_schedules`)."""

from __future__ import annotations

SCHEDULES = [
    # (name, function, schedule type, minutes)
    ("Poll due mailboxes", "portal.messaging.tasks.poll_due", "I", 1),
    ("Sweep the outbox", "portal.messaging.tasks.sweep_outbox", "I", 1),
    # Each message backs off on its own (5 min, 1 h, 6 h, daily): this only picks up the due ones.
    ("Refresh tracking of sent messages", "portal.messaging.tasks.refresh_tracking", "I", 5),
    (
        "Check overdue business acknowledgements",
        "portal.messaging.tasks.check_business_acks",
        "I",
        15,
    ),
    ("Daily handshake", "portal.mailboxes.tasks.handshake_all", "D", None),
    ("Daily certificate expiry check", "portal.certificates.tasks.check_expiry", "D", None),
    ("Daily audit chain verification", "portal.audit.tasks.verify_chain", "D", None),
    ("Publish the audit chain head", "portal.audit.tasks.publish_head", "I", 15),
    ("Purge payloads past retention", "portal.messaging.tasks.purge_payloads", "I", 60),
    ("Sweep stuck conformance runs", "portal.conformance.tasks.sweep_runs", "I", 5),
    ("Check for overdue messages", "portal.messaging.tasks.check_overdue", "I", 60),
    (
        "Daily check of overdue go-live tasks and letters",
        "portal.onboarding.tasks.check_overdue",
        "D",
        None,
    ),
    ("Publish and dispatch events", "portal.events.tasks.dispatch", "I", 1),
    ("Purge old events", "portal.events.tasks.purge", "D", None),
    ("Send due alerts", "portal.alerts.tasks.sweep", "I", 1),
    ("Daily alert digests", "portal.alerts.tasks.send_digests", "D", None),
    ("Sweep due deliveries", "portal.integrations.tasks.sweep_deliveries", "I", 1),
    ("Scan watched directories", "portal.integrations.tasks.scan_intakes", "I", 1),
    ("Prune task results", "portal.lib.taskresults.prune", "I", 5),
]


def ensure_schedules(**_kwargs) -> int:
    from django.db import transaction
    from django_q.models import Schedule

    with transaction.atomic():  # one commit for them all, not one a schedule
        for name, func, schedule_type, minutes in SCHEDULES:
            Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": schedule_type,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
    return len(SCHEDULES)
