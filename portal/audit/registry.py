"""Which models django-auditlog watches, and which of their fields are secrets."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.apps import apps

# Health fields change on every poll and are not a person's change; they are left out.
HEALTH_FIELDS = [
    "last_handshake_at",
    "last_handshake_ok",
    "last_handshake_ms",
    "last_poll_at",
    "last_poll_ok",
    "inbox_backlog",
    "poll_failing_since",
    "last_error",
    "last_error_at",
    "poll_claimed_at",
    "poll_claimed_by",
    "updated_at",
    "poll_requested_at",
]

WATCHED = {
    "mailboxes.Organisation": {},
    "mailboxes.Mailbox": {
        "mask_fields": ["password", "shared_key"],
        "exclude_fields": HEALTH_FIELDS,
    },
    "mailboxes.Workflow": {},
    "mailboxes.Recipient": {"exclude_fields": ["updated_at"]},
    # Retention: what is kept how long, and what is held whatever the rules say.
    "messaging.RetentionRule": {},
    "messaging.LegalHold": {},
    "certificates.Certificate": {"mask_fields": ["private_key"]},
    # Roles and permissions: who joined or left a group, and what a group or a user may do.
    "auth.User": {
        "mask_fields": ["password"],
        "exclude_fields": ["last_login"],
        "m2m_fields": ["groups", "user_permissions"],
    },
    "auth.Group": {"m2m_fields": ["permissions"]},
    # Reach: which organisations and mailboxes a person may see.
    "accounts.Membership": {"m2m_fields": ["mailboxes"]},
    "onboarding.Plan": {"exclude_fields": ["updated_at"]},
    "onboarding.Task": {"exclude_fields": ["updated_at"]},
    "onboarding.Decision": {},
    "onboarding.Correspondence": {"exclude_fields": ["updated_at"]},
    "onboarding.Evidence": {},
    "onboarding.AllowListEntry": {},
    "onboarding.GateOverride": {},
    # The recurring jobs (the daily chain verification among them), whatever changes them: the
    # admin, a shell. The cluster's own bookkeeping after each run is left out.
    # Alert channels (their webhook address and signing secret masked) and rules.
    "alerts.Channel": {
        "mask_fields": ["url", "secret"],
        "exclude_fields": ["failing_since", "last_error", "last_sent_at", "updated_at"],
    },
    "alerts.Rule": {"m2m_fields": ["channels"]},
    # Where received messages go on to (their secret masked), and the watched directories.
    "integrations.Destination": {"mask_fields": ["secret"], "exclude_fields": ["updated_at"]},
    "integrations.Route": {},
    "integrations.RouteDestination": {},
    "integrations.Intake": {},
    "django_q.Schedule": {"exclude_fields": ["next_run", "task"]},
}


def register_models() -> None:
    for label, options in WATCHED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue  # an app not installed yet
        if not auditlog.contains(model):
            auditlog.register(model, **options)
