from __future__ import annotations

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from portal.accounts import reach
from portal.lib.forms import PortalForm, PortalModelForm

from .models import (
    CHUNKING_HELP,
    Environment,
    Mailbox,
    Organisation,
    Workflow,
    validate_mailbox_id,
    validate_ods_code,
    validate_workflow_id,
)


class OrganisationForm(PortalModelForm):
    ods_code = forms.CharField(
        label="ODS code",
        max_length=10,
        help_text="The organisation's ODS code, for example X26. It forms part of the certificate CN.",
    )

    class Meta:
        model = Organisation
        fields = ["name", "ods_code"]
        help_texts = {"name": "The organisation's name as NHS England knows it."}

    def clean_ods_code(self) -> str:
        value = self.cleaned_data["ods_code"].strip().upper()
        validate_ods_code(value)
        return value


def _secret_help(changed_at, what: str) -> str:
    if changed_at is None:
        return f"Not set. Enter the {what}; it is stored encrypted and never shown again."
    when = date_format(timezone.localtime(changed_at), "j F Y, H:i")
    return f"Set, last changed {when}. Leave blank to keep it, or enter a new value to replace it."


# Shown on every setting that says where or how the mailbox connects (Mailbox.save clears them).
CLEARS_SECRETS = (
    " Changing it clears the stored password and shared key: enter them again in this form."
)


# What says where and as whom a mailbox connects, besides its password and shared key.
CONNECTION_FIELDS = ("mailbox_id", "base_url", "ca_bundle", "verify_tls")


class MailboxForm(PortalModelForm):
    """Create or edit a mailbox. Secrets are write-only: the form never carries the stored values."""

    mailbox_id = forms.CharField(
        label="MESH mailbox id",
        max_length=20,
        help_text="As issued by NHS England, for example X26ABC1. Letters are made upper case.",
    )
    base_url = forms.URLField(
        label="Base URL",
        required=False,
        assume_scheme="https",
        help_text="Leave blank for the environment's published MESH host. Outside the sandbox only "
        "NHS England's published hosts (or ones the operator allows) are accepted."
        + CLEARS_SECRETS,
    )
    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    new_shared_key = forms.CharField(
        label="Shared key",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    disable_reason = forms.CharField(
        label="Why are you disabling this live mailbox?",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit trail. Sending and polling stop until it is enabled again.",
    )
    confirm_disable = forms.BooleanField(
        label="I understand that disabling stops all transfers for this live mailbox",
        required=False,
    )

    field_order = [
        "organisation",
        "environment",
        "mailbox_id",
        "name",
        "base_url",
        "new_password",
        "new_shared_key",
        "ca_bundle",
        "verify_tls",
        "enabled",
        "poll_interval_minutes",
        "max_request_bytes",
    ]
    danger_fields = ("disable_reason", "confirm_disable")

    class Meta:
        model = Mailbox
        fields = [
            "organisation",
            "environment",
            "mailbox_id",
            "name",
            "base_url",
            "ca_bundle",
            "verify_tls",
            "enabled",
            "poll_interval_minutes",
            "max_request_bytes",
        ]
        help_texts = {
            "organisation": "The organisation the mailbox belongs to.",
            "environment": "Which MESH environment: sandbox, integration (PTL), deployment or "
            "live. A live mailbox stays live." + CLEARS_SECRETS,
            "name": "A short description for people, for example 'Pathology results'.",
            "ca_bundle": "The environment's root and sub-CA certificates. Blank means the system "
            "trust store." + CLEARS_SECRETS,
            "verify_tls": "Always on outside the sandbox; untick only for a local sandbox with a "
            "self-signed certificate." + CLEARS_SECRETS,
            "enabled": "A disabled mailbox is neither polled nor used for sending.",
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        mailbox = self.instance
        if user is not None:
            # Organisations wholly within reach, and the mailbox's own (a move needs the target's).
            choices = Organisation.objects.filter(pk__in=reach.whole_organisations_for(user))
            self.fields["organisation"].queryset = choices | Organisation.objects.filter(
                pk=mailbox.organisation_id
            )
        self.fields["new_password"].label = (
            "Replace password" if mailbox.password else "Set password"
        )
        self.fields["new_password"].help_text = _secret_help(
            mailbox.password_changed_at if mailbox.password else None, "MESH mailbox password"
        )
        self.fields["new_shared_key"].label = (
            "Replace shared key" if mailbox.shared_key else "Set shared key"
        )
        self.fields["new_shared_key"].help_text = _secret_help(
            mailbox.shared_key_changed_at if mailbox.shared_key else None,
            "environment's shared key",
        )
        self.disabling_live = self.changes_live_connection = False
        if mailbox.pk and mailbox.is_live:
            # Model.clean refuses the change too; disabled, the browser cannot even send one.
            self.fields["environment"].disabled = True
            self.fields[
                "environment"
            ].help_text = "A live mailbox stays live: add a new mailbox for another environment."

    def main_fields(self):
        return [f for f in self.visible_fields() if f.name not in self.danger_fields]

    def danger_zone(self):
        return [self[name] for name in self.danger_fields]

    def clean_mailbox_id(self) -> str:
        value = self.cleaned_data["mailbox_id"].strip().upper()
        validate_mailbox_id(value)
        return value

    def clean(self):
        cleaned = super().clean()
        environment, base_url = cleaned.get("environment"), cleaned.get("base_url") or ""
        if environment and environment != Environment.SANDBOX and base_url.startswith("http://"):
            self.add_error("base_url", "Only a sandbox may be reached over plain http: use https.")
        # self.instance still holds the stored values here: the form copies its data over later.
        was_live_enabled = self.instance.pk and self.instance.is_live and self.instance.enabled
        # A live mailbox's credentials or host: the step-up's business (portal.accounts.factors).
        self.changes_live_connection = bool(
            self.instance.pk
            and self.instance.is_live
            and (
                cleaned.get("new_password")
                or cleaned.get("new_shared_key")
                or set(self.changed_data) & set(CONNECTION_FIELDS)
            )
        )
        self.disabling_live = bool(was_live_enabled and cleaned.get("enabled") is False)
        if self.disabling_live:
            if not (cleaned.get("disable_reason") or "").strip():
                self.add_error(
                    "disable_reason", "Give a reason: disabling a live mailbox is audited."
                )
            if not cleaned.get("confirm_disable"):
                self.add_error(
                    "confirm_disable", "Confirm that you mean to stop this live mailbox."
                )
        return cleaned

    @transaction.atomic
    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        now = timezone.now()
        if self.cleaned_data.get("new_password"):
            mailbox.password, mailbox.password_changed_at = self.cleaned_data["new_password"], now
        if self.cleaned_data.get("new_shared_key"):
            mailbox.shared_key = self.cleaned_data["new_shared_key"]
            mailbox.shared_key_changed_at = now
        if commit:
            mailbox.save()
        return mailbox


class MailboxFilterForm(PortalForm):
    environment = forms.ChoiceField(
        required=False, choices=[("", "Any environment"), *Environment.choices]
    )
    enabled = forms.ChoiceField(
        required=False, choices=[("", "Enabled or not"), ("yes", "Enabled"), ("no", "Disabled")]
    )
    q = forms.CharField(label="Mailbox id or name", required=False, max_length=100)

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["environment"]:
            queryset = queryset.filter(environment=data["environment"])
        if data["enabled"]:
            queryset = queryset.filter(enabled=data["enabled"] == "yes")
        if query := data["q"].strip():
            queryset = queryset.filter(mailbox_id__icontains=query) | queryset.filter(
                name__icontains=query
            )
        return queryset


class WorkflowForm(PortalForm):
    BOTH = "both"
    workflow_id = forms.CharField(
        label="Workflow id",
        max_length=300,
        help_text="As registered with NHS England for this mailbox, for example TEST_WORKFLOW.",
    )
    direction = forms.ChoiceField(
        choices=[(BOTH, "Send and receive"), *Workflow.Direction.choices],
        help_text="Sending is refused for workflows not registered to send here.",
    )
    description = forms.CharField(
        required=False, max_length=300, help_text="Optional: what it carries."
    )
    accepts_chunked = forms.BooleanField(
        label="Recipients accept chunked messages",
        required=False,
        initial=True,
        help_text=CHUNKING_HELP,
    )
    demographic_addressing = forms.BooleanField(
        label="Demographic addressing",
        required=False,
        help_text=Workflow._meta.get_field("demographic_addressing").help_text,
    )

    business_ack_hours = forms.IntegerField(
        label="Business acknowledgement expected within (hours)",
        required=False,
        min_value=1,
        max_value=24 * 30,
        help_text=Workflow._meta.get_field("business_ack_hours").help_text,
    )
    business_ack_match = forms.ChoiceField(
        label="The acknowledgement names our message by",
        choices=Workflow.AckMatch.choices,
        initial=Workflow.AckMatch.LOCAL_ID,
        required=False,
        help_text="How the recipient's <workflow>_ACK message points at the message it acknowledges.",
    )

    def __init__(self, *args, mailbox: Mailbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox

    def directions(self) -> list[str]:
        chosen = self.cleaned_data["direction"]
        return (
            [Workflow.Direction.SEND, Workflow.Direction.RECEIVE]
            if chosen == self.BOTH
            else [chosen]
        )

    def clean_workflow_id(self) -> str:
        value = self.cleaned_data["workflow_id"].strip()
        validate_workflow_id(value)
        return value

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        existing = self.mailbox.workflows.filter(
            workflow_id=cleaned["workflow_id"], direction__in=self.directions()
        )
        if existing.exists():
            self.add_error(
                "workflow_id", f"{cleaned['workflow_id']} is already registered for that direction."
            )
        return cleaned

    def save(self) -> list[Workflow]:
        return [
            Workflow.objects.create(
                mailbox=self.mailbox,
                workflow_id=self.cleaned_data["workflow_id"],
                direction=direction,
                description=self.cleaned_data["description"],
                accepts_chunked=self.cleaned_data["accepts_chunked"],
                demographic_addressing=self.cleaned_data["demographic_addressing"],
                business_ack_hours=self.cleaned_data["business_ack_hours"],
                business_ack_match=self.cleaned_data["business_ack_match"]
                or Workflow.AckMatch.LOCAL_ID,
            )
            for direction in self.directions()
        ]
