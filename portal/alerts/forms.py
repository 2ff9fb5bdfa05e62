"""Admin forms: secrets are write-only (never rendered back); blank keeps the stored value."""

from __future__ import annotations

from django import forms

from portal.events.kinds import choices as kind_choices

from .models import Channel, Rule


class ChannelForm(forms.ModelForm):
    url = forms.CharField(
        label="Webhook address",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Teams, Slack and webhooks. Write-only: leave blank to keep the stored address.",
    )
    secret = forms.CharField(
        label="Signing secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signed webhooks (16 characters or more). Write-only: blank keeps the stored one.",
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "recipients", "url", "secret", "enabled"]

    def _keep(self, field: str) -> str:
        value = self.cleaned_data.get(field, "")
        return value if value else (getattr(self.instance, field, "") if self.instance.pk else "")

    def clean_url(self) -> str:
        return self._keep("url").strip()

    def clean_secret(self) -> str:
        return self._keep("secret")


class RuleForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=kind_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every kind.",
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "enabled",
            "kinds",
            "min_severity",
            "mailbox",
            "workflow",
            "channels",
            "digest",
        ]
