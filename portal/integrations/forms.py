from __future__ import annotations

from django import forms

from . import destinations
from .models import Destination, DestinationKind, Route


class DestinationForm(forms.ModelForm):
    """The secret is write-only: never rendered back; left blank, the stored one is kept."""

    new_secret = forms.CharField(
        label="Secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="S3 secret access key, or the webhook signing secret. Leave blank to keep the current one.",
    )

    class Meta:
        model = Destination
        fields = ["name", "kind", "settings", "enabled"]

    def clean(self):
        data = super().clean()
        config = data.get("settings") or {}
        if not isinstance(config, dict):
            raise forms.ValidationError({"settings": "Settings must be a JSON object."})
        kind = data.get("kind")
        if kind == DestinationKind.DIRECTORY:
            if not str(config.get("path", "")).startswith("/"):
                self.add_error("settings", 'A directory needs an absolute "path".')
            try:
                destinations.check_template(config.get("template") or destinations.DEFAULT_TEMPLATE)
            except ValueError as exc:
                self.add_error("settings", str(exc))
        elif kind == DestinationKind.S3 and not config.get("bucket"):
            self.add_error("settings", 'S3 needs a "bucket".')
        elif kind == DestinationKind.WEBHOOK and not str(config.get("url", "")).startswith(
            ("https://", "http://")
        ):
            self.add_error("settings", 'A webhook needs an http(s) "url".')
        return data

    def save(self, commit=True):
        destination = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            destination.secret = self.cleaned_data["new_secret"]
        if commit:
            destination.save()
        return destination


class RouteForm(forms.ModelForm):
    class Meta:
        model = Route
        fields = ["name", "mailbox", "workflow_pattern", "message_type", "enabled"]

    def clean_workflow_pattern(self):
        pattern = self.cleaned_data["workflow_pattern"].strip()
        if "*" in pattern[:-1]:
            raise forms.ValidationError('Only a trailing "*" is allowed (a prefix), as in PATH_*.')
        return pattern
