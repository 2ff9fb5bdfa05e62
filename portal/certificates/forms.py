from __future__ import annotations

from django import forms

from portal.lib.forms import PortalForm, PortalModelForm, read_text_upload

from .models import Certificate


class InstallForm(PortalForm):
    """The issued certificate, as an uploaded PEM file or pasted text (with its chain, if given).

    The service desk ticket is not asked here: the page asks for it once, in TicketForm.
    """

    pem_file = forms.FileField(
        label="Certificate file (PEM)",
        required=False,
        help_text="The .pem or .crt file the service desk sent back. It may include the chain.",
    )
    pem_text = forms.CharField(
        label="Or paste the certificate",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="Everything from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
    )

    def clean_pem_file(self) -> str:
        upload = self.cleaned_data.get("pem_file")
        return read_text_upload(upload) if upload else ""

    def clean(self):
        cleaned = super().clean()
        from_file, pasted = cleaned.get("pem_file") or "", (cleaned.get("pem_text") or "").strip()
        if "pem_file" in self.errors:
            return cleaned
        if from_file and pasted:
            self.add_error("pem_text", "Upload a file or paste the certificate, not both.")
        elif not from_file and not pasted:
            self.add_error("pem_file", "Upload the issued certificate, or paste it below.")
        cleaned["pem"] = from_file or pasted
        return cleaned


class TicketForm(PortalModelForm):
    class Meta:
        model = Certificate
        fields = ["service_desk_ticket"]


class CertificateFilterForm(PortalForm):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Certificate.Status.choices]
    )
    expiring = forms.BooleanField(label="Expiring within 90 days", required=False)
