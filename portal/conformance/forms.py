from __future__ import annotations

from django import forms
from django.conf import settings

from portal.lib.forms import PortalForm
from portal.mailboxes.models import Mailbox, validate_workflow_id
from portal.onboarding.models import Task

from .scenarios import choices
from .services import DEFAULT_HIGH_VOLUME_COUNT, rehearsal_tasks, run_refusal


class MailboxField(forms.ModelChoiceField):
    """Enabled mailboxes by MESH id, labelled with their environment so LIVE cannot be missed."""

    def __init__(self, **kwargs):
        queryset = Mailbox.objects.enabled().select_related("organisation").order_by("mailbox_id")
        super().__init__(queryset=queryset, to_field_name="mailbox_id", **kwargs)

    def label_from_instance(self, obj: Mailbox) -> str:
        name = f" {obj.name}" if obj.name else ""
        return f"{obj.mailbox_id} –{name} [{obj.get_environment_display().upper()}]"


class TaskField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Task) -> str:
        return f"{obj.plan.title}: {obj.ref} {obj.title}"


class RunForm(PortalForm):
    mailbox = MailboxField(
        label="Mailbox under test",
        empty_label="Choose a mailbox",
        help_text="The mailbox whose client behaviour is being shown. The environment is in brackets.",
    )
    peer = MailboxField(
        label="Peer mailbox",
        empty_label="Choose a peer",
        help_text="A second mailbox in the same environment that sends to and receives from the "
        "mailbox under test, for example X26ABC2 on the sandbox.",
    )
    workflow_id = forms.CharField(
        label="Workflow from the mailbox to the peer",
        required=False,
        max_length=300,
        validators=[validate_workflow_id],
        help_text="Leave blank to use one the mailbox sends and the peer receives. Endpoint lookup "
        "searches for the peer with it.",
    )
    reply_workflow_id = forms.CharField(
        label="Workflow from the peer to the mailbox",
        required=False,
        max_length=300,
        validators=[validate_workflow_id],
        help_text="Leave blank to use one the peer sends and the mailbox receives.",
    )
    scenarios = forms.MultipleChoiceField(
        label="Scenarios",
        choices=choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="All of them by default. High volume sends hundreds of messages and takes a while.",
    )
    task = TaskField(
        label="Attach the evidence pack to onboarding task",
        required=False,
        queryset=Task.objects.none(),
        empty_label="No task",
        help_text="When the run finishes its zip is kept as evidence on this task.",
    )
    allow_live = forms.BooleanField(
        label="Allow a run on a LIVE mailbox",
        required=False,
        help_text="Only with NHS England's agreement: the run sends hundreds of test messages.",
    )

    def __init__(self, *args, user=None, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("scenarios", [key for key, _ in choices()])
        super().__init__(*args, user=user, **kwargs)
        count = getattr(settings, "CONFORMANCE_HIGH_VOLUME_COUNT", DEFAULT_HIGH_VOLUME_COUNT)
        self.fields[
            "scenarios"
        ].help_text = (
            f"All of them by default. High volume sends {count} messages and takes a while."
        )
        if user is not None and user.has_perm("onboarding.add_evidence"):
            tasks = rehearsal_tasks().select_related("plan").order_by("plan", "position")
            self.fields["task"].queryset = tasks
        else:
            del self.fields["task"]
        if user is None or not user.has_perm("conformance.run_on_live"):
            del self.fields["allow_live"]

    def clean(self):
        data = super().clean()
        mailbox, peer = data.get("mailbox"), data.get("peer")
        if mailbox and peer:
            refusal = run_refusal(
                mailbox=mailbox, peer=peer, allow_live=data.get("allow_live", False)
            )
            if refusal:
                live = "LIVE" in refusal and "allow_live" in self.fields
                self.add_error("allow_live" if live else None, refusal)
        return data
