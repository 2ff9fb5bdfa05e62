"""The audit trail's filter row: actor, action, object and date range, each on an index."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.apps import apps
from django.utils import timezone

from portal.lib.forms import PortalForm

from .models import AuditRecord, actor_key
from .registry import WATCHED

# An actor filter matching more actors than this is applied as a range (no merged walks).
ACTOR_KEYS = 20

# Actions the portal's services, views, workers and commands write (the filter takes any action;
# these are offered as suggestions), and django-auditlog's model changes for every watched model.
EXPLICIT_ACTIONS = [
    "alert.acknowledged",
    "alert.snoozed",
    "alert.test_requested",
    "alert.sent",
    "alert.retry",
    "alert.failed",
    "api.call",
    "api.token_created",
    "api.token_revoked",
    "api.token_expired",
    "auth.login",
    "auth.logout",
    "auth.login_failed",
    "auth.lockout",
    "auth.lockout_cleared",
    "auth.expired_attempts_cleaned",
    "auth.break_glass",
    "sso.signin",
    "sso.signout",
    "sso.refused",
    "sso.linked",
    "sso.roles_changed",
    "sso.reach_changed",
    "auth.factor_enrolled",
    "auth.factor_verified",
    "auth.factor_reset",
    "auth.step_up",
    "auth.recovery_codes_created",
    "auth.recovery_code_used",
    "audit.trail_exported",
    "audit.verification_requested",
    "audit.message_log_exported",
    "certificate.csr_created",
    "certificate.csr_downloaded",
    "certificate.installed",
    "certificate.superseded",
    "certificate.expired",
    "conformance.run_started",
    "conformance.run_finished",
    "conformance.evidence_downloaded",
    "conformance.run_requeued",
    "conformance.run_abandoned",
    "delivery.delivered",
    "delivery.payload_fetched",
    "delivery.replayed",
    "destination.probed",
    "route.dead_letters_replayed",
    "mailbox.disabled",
    "mailbox.handshake",
    "mailbox.handshake_requested",
    "mailbox.poll",
    "mailbox.poll_requested",
    "mailbox.poll_failed",
    "mailbox.secrets_cleared",
    "message.queued",
    "message.resend",
    "message.accepted",
    "message.retry",
    "message.failed",
    "message.uncertain",
    "message.claim_released",
    "message.downloaded",
    "message.acknowledged",
    "message.tracked",
    "message.track",
    "message.track_requested",
    "message.payload_downloaded",
    "message.checksum_mismatch",
    "message.business_ack_linked",
    "message.business_ack_overdue",
    "message.payload_confirmed",
    "message.payload_unreadable",
    "payloads.encrypted",
    "payloads.keys_rewrapped",
    "message.payload_purged",
    "message.legal_hold_placed",
    "message.legal_hold_released",
    "message.quarantine_retry",
    "message.quarantine_left",
    "person.invited",
    "person.password_set",
    "person.roles_changed",
    "person.reach_changed",
    "person.disabled",
    "person.enabled",
    "onboarding.plan_created",
    "onboarding.decision_recorded",
    "onboarding.evidence_uploaded",
    "onboarding.evidence_downloaded",
    "onboarding.correspondence_drafted",
    "onboarding.correspondence_sent",
    "onboarding.correspondence_replied",
    "onboarding.correspondence_downloaded",
    "onboarding.gate_overridden",
    "onboarding.gate_override_revoked",
    "onboarding.task_not_applicable",
    "onboarding.task_checked_done",
    "onboarding.task_reopened",
    "onboarding.secret_refused",
    "onboarding.secret_guard_locked",
    "secrets.rotated",
]
KNOWN_ACTIONS = sorted(
    {*EXPLICIT_ACTIONS}
    | {
        f"{label.split('.')[1].lower()}.{verb}"
        for label in WATCHED
        for verb in ("create", "update", "delete")
    }
)


def object_type_choices() -> list[tuple[str, str]]:
    """Every model whose rows the trail names: django-auditlog's watched models, and messages."""
    labels = {label.lower() for label in WATCHED} | {"messaging.message"}
    choices = []
    for label in sorted(labels):
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        choices.append((label, f"{str(model._meta.verbose_name).capitalize()} ({label})"))
    return [("", "Any object"), *choices]


def local_midnight(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _date_field(label: str) -> forms.DateField:
    return forms.DateField(
        label=label, required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class AuditFilterForm(PortalForm):
    actor = forms.CharField(
        required=False,
        max_length=200,
        help_text="A username, or a worker or command-line label, or its start; any case.",
    )
    action = forms.CharField(
        required=False,
        max_length=100,
        help_text="Exact, for example message.payload_downloaded.",
        widget=forms.TextInput(attrs={"list": "audit-actions"}),
    )
    object_type = forms.ChoiceField(label="Object type", required=False, choices=())
    object_id = forms.CharField(
        label="Object id", required=False, max_length=100, help_text="The row's number, e.g. 42."
    )
    date_from = _date_field("From date")
    date_to = _date_field("To date")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["object_type"].choices = object_type_choices()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        if cleaned.get("object_id") and not cleaned.get("object_type"):
            self.add_error("object_type", "Choose the object type for this object id.")
        return cleaned

    def filter(self, queryset):
        """Valid filters apply even when another is invalid; the invalid one shows its error."""
        if not self.is_bound:
            return queryset
        self.is_valid()
        data = self.cleaned_data
        exact = {
            "action": (data.get("action") or "").strip(),
            "object_type": data.get("object_type"),
        }
        queryset = queryset.filter(**{key: value for key, value in exact.items() if value})
        if (keys := self.actor_keys()) is not None:
            queryset = queryset.filter(actor_key__in=keys)
        elif start := actor_key(data.get("actor") or ""):  # many actors start so: a range
            queryset = queryset.filter(actor_key__gte=start, actor_key__lt=start + "\U0010ffff")
        if data.get("object_type") and (object_id := (data.get("object_id") or "").strip()):
            queryset = queryset.filter(object_id=object_id)
        start = local_midnight(data["date_from"]) if data.get("date_from") else None
        end = local_midnight(data["date_to"] + timedelta(days=1)) if data.get("date_to") else None
        if start or end:
            queryset = queryset.sealed_between(start, end)
        return queryset

    def actor_keys(self) -> list[str] | None:
        """The actors (case-folded labels) the actor filter names, or None: no filter, or too many.

        Any case, and the start of a label is enough ("worker" finds every worker).
        """
        if not hasattr(self, "_actor_keys"):
            start = actor_key(self.cleaned_data.get("actor") or "") if self.is_bound else ""
            found = AuditRecord.objects.actor_keys_starting(start, ACTOR_KEYS) if start else None
            self._actor_keys = found
        return self._actor_keys

    def page(self, records, *, after=None, before=None, size: int = 50):
        """One keyset page of the filtered records: several actors' walks merged (see
        AuditQuerySet.merged_walks), else the filtered rows' own walk of seq."""
        rows = self.filter(records)
        keys = self.actor_keys()
        if keys is not None and len(keys) > 1:
            rows = rows.merged_walks("actor_key", keys, after=after, before=before, size=size)
        return rows.keyset_page(after=after, before=before, size=size)

    def applied(self) -> dict[str, str]:
        """The filters in use, as text: recorded with every export of the trail."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: str(v) for k, v in self.cleaned_data.items() if v not in (None, "")}
