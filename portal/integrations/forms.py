from __future__ import annotations

from django import forms
from django.utils import timezone

from portal.lib.forms import PortalModelForm

from . import destinations
from .models import Destination, DestinationKind, Route

# How many ordered destination choices a route form offers beyond those it already has.
SPARE_STEPS = 2


class DestinationForm(PortalModelForm):
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
        help_texts = {
            "settings": (
                'A JSON object. Directory: {"path": "/srv/drop", "template": '
                '"{workflow}/{date}/{filename}", "sidecar": true}. S3: {"bucket": "landing", '
                '"prefix": "inbound/{mailbox}/", "endpoint_url": "", "region": "eu-west-2", '
                '"access_key_id": "..."}. Webhook: {"url": "https://...", "timeout": 10, '
                '"body_limit": 0, "link_ttl": 86400}. Held for the API: {}.'
            )
        }

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
            destination.secret_changed_at = timezone.now()
        if commit:
            destination.save()
        return destination


class RouteForm(PortalModelForm):
    class Meta:
        model = Route
        fields = ["name", "mailbox", "workflow_pattern", "message_type", "enabled"]
        help_texts = {
            "workflow_pattern": (
                "An exact workflow id (PATHOLOGY_RESULTS), a prefix ending in * (PATH_*), or * for "
                "every workflow. The most specific enabled route of a mailbox wins."
            )
        }

    def clean_workflow_pattern(self):
        pattern = self.cleaned_data["workflow_pattern"].strip()
        if "*" in pattern[:-1]:
            raise forms.ValidationError('Only a trailing "*" is allowed (a prefix), as in PATH_*.')
        return pattern


class RoutePageForm(RouteForm):
    """A route and its destinations in order, on the portal's page: one choice per place."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = (
            list(self.instance.steps.values_list("destination_id", flat=True))
            if (self.instance.pk)
            else []
        )
        choices = Destination.objects.all()
        for index in range(max(3, len(current) + SPARE_STEPS)):
            self.fields[f"step_{index}"] = forms.ModelChoiceField(
                queryset=choices,
                required=index == 0,
                label=f"Destination {index + 1}",
                help_text="Tried in this order; each gets its own delivery." if index == 0 else "",
                initial=current[index] if index < len(current) else None,
            )

    def step_fields(self):
        return [self[name] for name in self.fields if name.startswith("step_")]

    def clean(self):
        data = super().clean()
        chosen = [data[name] for name in self.fields if name.startswith("step_") and data.get(name)]
        if len({d.pk for d in chosen}) != len(chosen):
            raise forms.ValidationError("Each destination can appear only once in a route.")
        data["destinations"] = chosen
        return data
