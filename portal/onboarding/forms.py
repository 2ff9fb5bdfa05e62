from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone

from portal.accounts import reach
from portal.certificates.models import Certificate
from portal.lib.forms import PortalForm, PortalModelForm
from portal.mailboxes.models import Environment, Mailbox, Organisation

from . import checks
from .errors import OnboardingError
from .evidence import ACCEPTED, EvidenceRejected, check_upload, max_bytes, review_months_needed
from .guard import secret_refusal
from .models import Correspondence, Decision, EvidenceKind, Plan, Task, TaskStatus
from .plans import TEMPLATES
from .services import may_mark_not_applicable, network_text, parse_network

TARGET_ENVIRONMENTS = [c for c in Environment.choices if c[0] != Environment.SANDBOX]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


# Who can have a part in a go-live plan: those who work its tasks (onboarding leads), and those who
# act on its mailboxes and certificates (mailbox admins: "generate the production CSR").
OWNER_PERMISSIONS = ("change_task", "change_mailbox", "add_certificate")


def task_owners(user=None, organisation=None):
    """People who can own an onboarding task: a part in the plan's work; those `user` may see,
    when given; and (for a plan of `organisation`) with that organisation within their reach."""
    can = Q(groups__permissions__codename__in=OWNER_PERMISSIONS) | Q(
        user_permissions__codename__in=OWNER_PERMISSIONS
    )
    users = get_user_model().objects.filter(is_active=True)
    if user is not None:
        users = users.filter(pk__in=reach.people_for(user).values("pk"))
    if organisation is not None:
        users = users.filter(pk__in=reach.people_reaching(organisation).values("pk"))
    return users.filter(can | Q(is_superuser=True)).distinct().order_by("username")


def _no_secrets(
    text: str, organisation: Organisation | None, *, user, what: str, stored: str
) -> str:
    if text == stored:
        return text  # checked when it was saved; re-checking would only use up the person's limit
    problem = secret_refusal(text=text, organisation=organisation, user=user, what=what)
    if problem:
        raise forms.ValidationError(problem)
    return text


class PlanCreateForm(PortalForm):
    template = forms.ChoiceField(
        choices=[(t.key, f"{t.name} (version {t.version})") for t in TEMPLATES.values()],
        widget=forms.RadioSelect,
        help_text="The plan copies the template's tasks: later versions "
        "of the template never change it.",
    )
    organisation = forms.ModelChoiceField(Organisation.objects.all())
    environment = forms.ChoiceField(
        label="Target environment",
        choices=TARGET_ENVIRONMENTS,
        initial=Environment.LIVE,
        help_text="One plan per organisation and environment. The live plan holds the readiness gate.",
    )
    target_mailbox = forms.ModelChoiceField(
        Mailbox.objects.exclude(environment=Environment.SANDBOX),
        required=False,
        label="Mailbox in the target environment",
        help_text="The live mailbox, once NHS England has issued it. You can name it later.",
    )
    integration_mailbox = forms.ModelChoiceField(
        Mailbox.objects.filter(environment=Environment.INTEGRATION),
        required=False,
        help_text="Optional: quoted in the emails to NHS England.",
    )
    owner = forms.ModelChoiceField(
        task_owners(),
        required=False,
        label="Owner of every task",
        help_text="A starting point; give tasks other owners as the work is shared out.",
    )
    start_date = forms.DateField(
        initial=timezone.localdate,
        widget=DateInput(),
        help_text="Due dates are suggested from here, in working days.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = task_owners(self.user)

    def clean_template(self):
        return TEMPLATES[self.cleaned_data["template"]]


class PlanMailboxesForm(PortalModelForm):
    class Meta:
        model = Plan
        fields = ["target_mailbox", "integration_mailbox"]
        help_texts = {
            "target_mailbox": "Its id is the one the production CSR's CN must use.",
            "integration_mailbox": "Quoted in the emails to NHS England.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plan, mailboxes = (
            self.instance,
            Mailbox.objects.filter(organisation_id=self.instance.organisation_id),
        )
        self.fields["target_mailbox"].queryset = mailboxes.filter(environment=plan.environment)
        self.fields["target_mailbox"].label = f"{plan.get_environment_display()} mailbox"
        self.fields["integration_mailbox"].queryset = mailboxes.filter(
            environment=Environment.INTEGRATION
        )


class TaskForm(PortalForm):
    status = forms.ChoiceField(choices=TaskStatus.choices)
    owner = forms.ModelChoiceField(task_owners(), required=False)
    due_date = forms.DateField(
        required=False,
        widget=DateInput(),
        help_text="Suggested from NHS England's turnaround in working days; a date you set is kept.",
    )
    notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Never paste passwords, shared keys or private keys here.",
    )
    reason = forms.CharField(
        label="Why is it not applicable?",
        required=False,
        max_length=500,
        help_text="Needed only when you mark the task not applicable; kept in its notes.",
    )

    def __init__(self, *args, task: Task, user=None, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "status": task.status,
                "owner": task.owner_id,
                "due_date": task.due_date,
                "notes": task.notes,
            },
        )
        super().__init__(*args, user=user, **kwargs)
        self.task = task
        self.fields["owner"].queryset = task_owners(self.user, organisation=task.plan.organisation)
        if task.status != TaskStatus.NOT_APPLICABLE and not may_mark_not_applicable(task, user):
            # Not offered; posted anyway, the service refuses it with the reason.
            self.fields["status"].widget.choices = [
                c for c in TaskStatus.choices if c[0] != TaskStatus.NOT_APPLICABLE
            ]
            del self.fields["reason"]
        elif task.required:
            self.fields["reason"].help_text = (
                "Needed only when you mark this required task not applicable: the readiness gate "
                "then stops waiting for it. At least 20 characters; kept in its notes and audited."
            )

    def clean_notes(self) -> str:
        return _no_secrets(
            self.cleaned_data["notes"],
            self.task.plan.organisation,
            user=self.user,
            what=f"the notes of task {self.task.pk}",
            stored=self.task.notes,
        )


class CertificateLinkForm(PortalForm):
    certificate = forms.ModelChoiceField(
        Certificate.objects.none(),
        label="CSR made in NeoMesh",
        help_text="Its CN must use this plan's mailbox id and the organisation's ODS code.",
    )

    def __init__(self, *args, plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        mine = Certificate.objects.filter(mailbox__organisation_id=plan.organisation_id)
        self.fields["certificate"].queryset = (
            checks.usable_certificates(mine)
            .defer("private_key", "csr_pem", "certificate_pem", "chain_pem")
            .order_by("-created_at")
        )


class EvidenceForm(PortalForm):
    kind = forms.ChoiceField(choices=EvidenceKind.choices)
    title = forms.CharField(max_length=200, help_text="What it is, for example 'DSPT 2026-27'.")
    file = forms.FileField(
        help_text=f"{ACCEPTED}; at most {max_bytes() // 1024 // 1024} MB. Its content must match "
        "its type."
    )
    review_date = forms.DateField(
        label="Review or expiry date",
        required=False,
        widget=DateInput(),
        help_text="When it lapses and must be renewed (the DSPT is annual). Leave blank if it does not.",
    )

    def __init__(self, *args, task: Task | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task
        if task is not None and not self.is_bound:
            self.fields["kind"].initial = task.evidence_kind or EvidenceKind.OTHER
            if task.review_months:
                today = timezone.localdate()
                months = today.month - 1 + task.review_months
                day = min(today.day, 28)
                self.fields["review_date"].initial = today.replace(
                    year=today.year + months // 12, month=months % 12 + 1, day=day
                )

    def clean_file(self):
        try:
            return check_upload(self.cleaned_data["file"])
        except EvidenceRejected as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        months = review_months_needed(kind, self.task) if kind else None
        if months and not data.get("review_date"):
            self.add_error(
                "review_date",
                f"The {EvidenceKind(kind).label} lapses (it is renewed every {months} months): "
                "give the date it must be renewed by.",
            )
        return data


class DecisionForm(PortalForm):
    option = forms.ChoiceField(label="NHS England's answer", widget=forms.RadioSelect)
    reply_text = forms.CharField(
        label="NHS England's reply",
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Paste the reply: it is kept as the decision's evidence.",
    )
    ticket_reference = forms.CharField(required=False, max_length=100)
    reply_file = forms.FileField(
        label="The reply as a file (optional)",
        required=False,
        help_text="The saved email (.eml) or a PDF of it. Without one, the pasted text is kept.",
    )

    def __init__(self, *args, decision: Decision, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [
            (option["key"], f"{option['label']}: {option['summary']}")
            for option in decision.options
        ]

    def clean_reply_file(self):
        upload = self.cleaned_data.get("reply_file")
        if not upload:
            return None
        try:
            return check_upload(upload)
        except EvidenceRejected as exc:
            raise forms.ValidationError(str(exc)) from None


def _addresses(value: str) -> str:
    addresses = [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    for address in addresses:
        try:
            validate_email(address)
        except forms.ValidationError:
            raise forms.ValidationError(f"{address} is not an email address.") from None
    return ", ".join(addresses)


class CorrespondenceForm(PortalModelForm):
    class Meta:
        model = Correspondence
        fields = ["to_addresses", "cc_addresses", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 18})}
        help_texts = {
            "to_addresses": "Separate addresses with commas. Blank for a web form request.",
            "body": "Never include passwords, shared keys or private keys.",
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, user=user, **kwargs)

    def clean_to_addresses(self) -> str:
        return _addresses(self.cleaned_data["to_addresses"])

    def clean_cc_addresses(self) -> str:
        return _addresses(self.cleaned_data["cc_addresses"])

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        if "\n" in subject or "\r" in subject:
            raise forms.ValidationError("The subject must be one line.")
        return subject

    def clean_body(self) -> str:
        return _no_secrets(
            self.cleaned_data["body"],
            self.instance.plan.organisation,
            user=self.user,
            what=f"the draft email {self.instance.pk}",
            stored=self.instance.body,
        )


class SentForm(PortalForm):
    sent_on = forms.DateField(label="Date sent", initial=timezone.localdate, widget=DateInput())
    ticket_reference = forms.CharField(
        required=False, max_length=100, help_text="The service desk's reference, if you have one."
    )


class ReplyForm(PortalForm):
    replied_on = forms.DateField(
        label="Date of the reply", initial=timezone.localdate, widget=DateInput()
    )
    reply_text = forms.CharField(label="The reply", widget=forms.Textarea(attrs={"rows": 8}))
    ticket_reference = forms.CharField(
        required=False,
        max_length=100,
        help_text="For example CS0123456 from the National Service Desk.",
    )


class AllowListForm(PortalForm):
    network = forms.CharField(
        label="Address or CIDR range",
        max_length=50,
        help_text=(
            "A public IPv4 or IPv6 address, or a small range (up to /16 for IPv4, /32 for IPv6): "
            "the address NHS England will see your client connect from."
        ),
    )
    purpose = forms.CharField(max_length=200, help_text="For example 'production NAT gateway'.")
    environment = forms.ChoiceField(choices=TARGET_ENVIRONMENTS)

    def clean_network(self) -> str:
        try:
            return network_text(parse_network(self.cleaned_data["network"]))
        except OnboardingError as exc:
            raise forms.ValidationError(str(exc)) from None


class OverrideForm(PortalForm):
    reason = forms.CharField(
        label="Why must this live mailbox transfer before its plan is complete?",
        widget=forms.Textarea(attrs={"rows": 4}),
        min_length=20,
        help_text="Recorded in the audit trail with your name. At least 20 characters.",
    )
    confirm = forms.BooleanField(
        label="I understand that the live mailbox will send and poll despite the reasons above"
    )


class RevokeForm(PortalForm):
    reason = forms.CharField(
        label="Why revoke it?",
        required=False,
        max_length=500,
        help_text="Recorded in the audit trail.",
    )
