from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from portal.accounts import reach
from portal.lib.forms import PortalForm
from portal.mailboxes.models import (
    Environment,
    Mailbox,
    Workflow,
    validate_mailbox_id,
    validate_ods_code,
    validate_workflow_id,
)

from . import search
from .models import Direction, Status
from .services import looks_demographic


class MailboxChoiceField(forms.ModelChoiceField):
    """Mailboxes chosen by their MESH id, labelled with their environment so LIVE cannot be missed."""

    def __init__(self, **kwargs):
        queryset = Mailbox.objects.enabled().order_by("mailbox_id")
        super().__init__(queryset=queryset, to_field_name="mailbox_id", **kwargs)

    def label_from_instance(self, obj: Mailbox) -> str:
        name = f" {obj.name}" if obj.name else ""
        return f"{obj.mailbox_id} –{name} [{obj.get_environment_display().upper()}]"


def send_workflow_choices(user=None) -> list:
    """Workflows registered to send, grouped by mailbox id (the send page's script filters by it);
    only mailboxes within `user`'s reach when given."""
    workflows = (
        Workflow.objects.all() if user is None else reach.within_reach(Workflow.objects, user)
    )
    rows = (
        workflows.filter(direction=Workflow.Direction.SEND, mailbox__enabled=True)
        .order_by("mailbox__mailbox_id", "workflow_id")
        .values_list("mailbox__mailbox_id", "workflow_id")
    )
    groups: dict[str, list] = {}
    for mailbox_id, workflow_id in rows:
        groups.setdefault(mailbox_id, []).append((workflow_id, workflow_id))
    return [("", "Choose a workflow"), *groups.items()]


def no_send_workflows_message(mailbox: Mailbox) -> str:
    url = reverse("mailboxes:detail", args=[mailbox.pk])
    return format_html(
        "{} has no workflow registered for sending, so nothing can be sent from it yet. "
        '<a href="{}#workflows">Add a send workflow on its mailbox page</a> (one NHS England has '
        "registered for it; a mailbox administrator can), or choose another mailbox.",
        mailbox.mailbox_id,
        url,
    )


class SendForm(PortalForm):
    mailbox = MailboxChoiceField(
        label="From mailbox",
        empty_label="Choose a mailbox",
        help_text="Only enabled mailboxes are listed. Check the environment in brackets.",
    )
    recipient = forms.CharField(
        label="To (recipient mailbox id)",
        max_length=100,
        help_text="The recipient's MESH mailbox id, for example X26ABC2. Not sure? Look it up by ODS "
        "code and workflow below. For a workflow marked for demographic addressing, an NHS number "
        "(optionally _YYYYMMDD date of birth and _Surname) instead.",
    )
    workflow_id = forms.ChoiceField(
        label="Workflow",
        help_text="Only workflows registered to send from the chosen mailbox are accepted.",
        widget=forms.Select(attrs={"data-workflows-for": "id_mailbox"}),
    )
    subject = forms.CharField(
        required=False, max_length=500, help_text="Optional. Seen by the recipient."
    )
    local_id = forms.CharField(
        label="Local id",
        required=False,
        max_length=300,
        help_text="Optional: your own reference for this message. NeoMesh makes one if you leave it blank.",
    )
    encrypted = forms.BooleanField(
        label="The file is encrypted",
        required=False,
        help_text="Tells the recipient (mex-Content-Encrypted) that you encrypted the file itself.",
    )
    compressed = forms.BooleanField(
        label="The file is compressed",
        required=False,
        help_text="Tells the recipient (mex-Content-Compressed) that the file itself is compressed, "
        "for example a zip. NeoMesh compresses every transfer anyway; this is about the file.",
    )
    file = forms.FileField(label="File to send")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow_id"].choices = send_workflow_choices(self.user)
        # The send page's script shows the red LIVE banner as soon as one of these is chosen.
        live = self.fields["mailbox"].queryset.filter(environment=Environment.LIVE)
        self.fields["mailbox"].widget.attrs["data-live-mailboxes"] = " ".join(
            live.values_list("mailbox_id", flat=True)
        )
        limit = filesizeformat(settings.MESH_MAX_UPLOAD_BYTES)
        self.fields["file"].help_text = f"Any file up to {limit}. Large files are sent in chunks."

    def clean_recipient(self) -> str:
        """A mailbox id, upper-cased; a demographic address is kept as typed (the send service
        checks it against the workflow)."""
        value = self.cleaned_data["recipient"].strip()
        if looks_demographic(value):
            return value
        validate_mailbox_id(value.upper())
        return value.upper()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MESH_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than the {filesizeformat(settings.MESH_MAX_UPLOAD_BYTES)} MESH allows."
            )
        return upload

    def clean(self):
        cleaned = super().clean()
        mailbox, workflow_id = cleaned.get("mailbox"), cleaned.get("workflow_id")
        sends = Workflow.Direction.SEND
        if mailbox and not mailbox.workflows.filter(direction=sends).exists():
            # Nothing to choose from: say why and what to do, not "This field is required."
            self.errors.pop("workflow_id", None)
            self.add_error("workflow_id", no_send_workflows_message(mailbox))
        elif mailbox and workflow_id:
            registered = mailbox.workflows.filter(
                workflow_id=workflow_id, direction=Workflow.Direction.SEND
            )
            if not registered.exists():
                self.add_error(
                    "workflow_id",
                    f"{workflow_id} is not registered for sending from {mailbox.mailbox_id}. "
                    "Add it to the mailbox's workflows first.",
                )
        return cleaned


class FixSendForm(SendForm):
    """The send form for "Fix and resend": every field editable, the file optional."""

    def __init__(self, *args, original, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].required = False
        self.fields["file"].label = "Replace the file (optional)"
        self.fields["file"].help_text = (
            f"Leave empty to send the same file again ({original.filename or 'no name'}, "
            f"{filesizeformat(original.size_bytes or 0)})."
        )

    def clean_file(self):
        return super().clean_file() if self.cleaned_data.get("file") else None


class LookupForm(PortalForm):
    """Find a recipient mailbox by ODS code and workflow (MESH endpoint lookup)."""

    mailbox = MailboxChoiceField(
        label="Ask through mailbox",
        empty_label="Choose a mailbox",
        help_text="Lookups go to the MESH environment of this mailbox.",
    )
    ods = forms.CharField(label="Recipient ODS code", max_length=10, help_text="For example X26.")
    workflow = forms.CharField(
        label="Workflow id", max_length=300, help_text="For example TEST_WORKFLOW."
    )

    def clean_ods(self) -> str:
        value = self.cleaned_data["ods"].strip().upper()
        validate_ods_code(value)
        return value

    def clean_workflow(self) -> str:
        value = self.cleaned_data["workflow"].strip()
        validate_workflow_id(value)
        return value


class MessageFilterForm(PortalForm):
    # The search's narrowing (search.narrowing), worked out on the first filter(); once its words
    # are collected from the word index instead of walked (collect_matches), by their ids.
    searched: search.Narrowing | None = None

    mailbox = forms.ModelChoiceField(
        queryset=Mailbox.objects.order_by("mailbox_id"), required=False, empty_label="Any mailbox"
    )
    direction = forms.ChoiceField(required=False, choices=[("", "In and out"), *Direction.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    workflow = forms.CharField(label="Workflow id", required=False, max_length=300)
    date_from = forms.DateField(
        label="From date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label="Search",
        help_text="A MESH message id or local id, or its start (any case for MESH ids); or words "
        "from the subject or filename: every word must match the start of one of theirs.",
        required=False,
        max_length=300,
        widget=forms.TextInput(attrs={"type": "search"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].label_from_instance = lambda m: (
            f"{m.mailbox_id} ({m.get_environment_display()})"
        )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def filter(self, queryset):
        """Each filter maps onto an index of Message (see its Meta) or its words (search.py).

        Valid filters apply even when another is invalid; the invalid one shows its error.
        """
        if not self.is_bound:
            return queryset
        self.is_valid()
        data = self.cleaned_data
        exact = {key: data.get(key) for key in ("mailbox", "direction", "status")}
        queryset = queryset.filter(**{key: value for key, value in exact.items() if value})
        if workflow := (data.get("workflow") or "").strip():
            queryset = queryset.filter(workflow_id=workflow)
        if data.get("date_from"):
            queryset = queryset.filter(created_at__gte=_local_midnight(data["date_from"]))
        if data.get("date_to"):
            queryset = queryset.filter(
                created_at__lt=_local_midnight(data["date_to"] + timedelta(days=1))
            )
        if (searched := self.narrowing()) is not None:
            queryset = searched.apply(queryset)
        return queryset

    def narrowing(self) -> search.Narrowing | None:
        """The search's narrowing, worked out once (its index checks are queries); None without one."""
        if self.searched is None and self.is_bound:
            self.is_valid()
            if query := (self.cleaned_data.get("q") or "").strip():
                self.searched = search.narrowing(query)
        return self.searched

    @property
    def search_walks(self) -> bool:
        """Whether the search is checked row by row as the page walks (many matches): the result
        count then walks newest first too."""
        return (searched := self.narrowing()) is not None and searched.walks

    @property
    def walked_words(self) -> frozenset[str] | None:
        return searched.words if (searched := self.narrowing()) is not None else None

    @property
    def word_walk(self) -> search.WordWalk | None:
        """How a word search that is the list's only filter walks: along its rarest word's entries
        in the word index (search.WordWalk), not along every message, within the person's reach.
        With another filter the list walks that filter's index instead, which holds only its rows,
        where the word's entries may be mostly rows of other mailboxes or days. None when the list
        walks itself."""
        searched = self.narrowing()
        if searched is None or searched.rarest is None or self._filters_besides_search():
            return None
        if getattr(self, "_walk_of", None) != searched:
            within = self._reach_mailboxes()
            self._walk_of = searched
            self._walk = search.word_walk(searched.words, searched.rarest, within)
        return self._walk

    def _filters_besides_search(self) -> bool:
        return any(v not in (None, "") for k, v in self.cleaned_data.items() if k != "q")

    def _reach_mailboxes(self) -> list[int] | None:
        """The mailboxes the rows may come from whatever the filters, None for every one."""
        return None

    def collect_matches(self) -> bool:
        """Read a word search's matches from the word index instead of walking the page (see
        search.matching_ids): False if it walks no words or they are too common for that."""
        if not self.walked_words or (ids := search.matching_ids(self.walked_words)) is None:
            return False
        self.searched = search.among(ids)
        return True

    @property
    def matched_ids(self) -> list[int] | None:
        """The search's matches when they were collected from the word index (ascending ids)."""
        return searched.collected if (searched := self.narrowing()) is not None else None


def _local_midnight(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field: a list of uploads, each checked like a single one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else [data]
        if self.required and not [upload for upload in uploads if upload]:
            raise forms.ValidationError("Choose at least one file to send.", code="required")
        return [super(MultipleFileField, self).clean(upload, initial) for upload in uploads]


class BulkSendForm(SendForm):
    """Many files to one recipient on one workflow: each becomes its own message (its own local
    id, made by NeoMesh), queued through the one send service."""

    files = MultipleFileField(label="Files to send")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["file"], self.fields["local_id"]
        limit = filesizeformat(settings.MESH_MAX_UPLOAD_BYTES)
        self.fields["files"].help_text = (
            f"Choose as many files as you like (each up to {limit}); each is sent as its own "
            "message. The upload's progress shows below as it goes."
        )

    def clean_files(self):
        uploads = self.cleaned_data["files"]
        for upload in uploads:
            if upload.size > settings.MESH_MAX_UPLOAD_BYTES:
                raise forms.ValidationError(
                    f"{upload.name} is larger than the "
                    f"{filesizeformat(settings.MESH_MAX_UPLOAD_BYTES)} MESH allows."
                )
        return uploads
