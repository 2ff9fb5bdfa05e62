from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.accounts import reach
from portal.lib.forms import PortalForm
from portal.mailboxes.models import Mailbox

from .models import WORKFLOW_PATTERN_RE, Scope
from .services import GrantSpec


def parse_patterns(text: str) -> list[str]:
    """Workflow patterns, one a line or comma-separated: exact ids, or prefixes ending in `*`."""
    patterns = [p.strip() for p in re.split(r"[,\n]", text or "") if p.strip()]
    bad = [p for p in patterns if not WORKFLOW_PATTERN_RE.match(p)]
    if bad:
        raise forms.ValidationError(
            f"Not a workflow pattern: {', '.join(bad)}. Use workflow ids, or a prefix ending in *."
        )
    return patterns


class TokenForm(PortalForm):
    name = forms.CharField(max_length=100, help_text="The system that will use it, e.g. Data lake.")
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        help_text="The person answerable for that system.",
    )
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The token stops working at the start of this day.",
    )
    rate_per_minute = forms.IntegerField(
        label="Calls per minute", min_value=1, max_value=100_000, initial=600
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_on"].initial = timezone.localdate() + timedelta(days=90)
        if self.user is not None:
            # The people and mailboxes within reach (the grants' choices are narrowed as added).
            people = reach.people_for(self.user).filter(is_active=True).order_by("username")
            self.fields["owner"].queryset = people
        mailboxes = Mailbox.objects.order_by("mailbox_id")
        for scope in Scope:
            self.fields[_boxes(scope)] = forms.ModelMultipleChoiceField(
                queryset=mailboxes,
                required=False,
                to_field_name="mailbox_id",
                widget=forms.CheckboxSelectMultiple,
                label=f"{scope.value}: mailboxes",
                help_text=f"{scope.label}. Leave all unticked for no {scope.value} scope.",
            )
            if scope != Scope.MESSAGES_SEND:
                self.fields[_flows(scope)] = forms.CharField(
                    required=False,
                    label=f"{scope.value}: workflows",
                    help_text="Optional: workflow ids, or prefixes ending in *, comma-separated. "
                    "Empty means every workflow.",
                )

    def scope_fields(self):
        return [
            [self[name] for name in (_boxes(s), _flows(s)) if name in self.fields] for s in Scope
        ]

    def clean_expires_on(self):
        value = self.cleaned_data["expires_on"]
        if value <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return value

    def clean(self):
        cleaned = super().clean()
        grants = []
        for scope in Scope:
            boxes = cleaned.get(_boxes(scope))
            try:
                patterns = parse_patterns(cleaned.get(_flows(scope), ""))
            except forms.ValidationError as exc:
                self.add_error(_flows(scope), exc)
                continue
            if boxes:
                grants.append(
                    GrantSpec(scope=scope.value, mailboxes=list(boxes), workflow_patterns=patterns)
                )
        if not grants and not self.errors:
            raise forms.ValidationError("Tick at least one mailbox for at least one scope.")
        cleaned["grants"] = grants
        return cleaned

    def expires_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.cleaned_data["expires_on"], time.min))


def _boxes(scope) -> str:
    return f"{scope.value.replace(':', '_')}_mailboxes"


def _flows(scope) -> str:
    return f"{scope.value.replace(':', '_')}_workflows"
