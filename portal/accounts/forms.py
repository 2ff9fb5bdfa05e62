"""Forms of sign-in, the second factor and people management."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm
from django.contrib.auth.models import Group, User

from portal.lib.forms import PortalForm, PortalFormMixin

from . import sso
from .backends import password_allowed
from .models import Membership
from .roles import ROLE_PERMISSIONS

# Named by model reference only: accounts never imports the mailboxes app (tests/test_layering.py).
_ORGANISATION = Membership._meta.get_field("organisation").related_model
_MAILBOX = Membership._meta.get_field("mailboxes").related_model


class SignInForm(AuthenticationForm):
    """Django's sign-in form; with local accounts off, one message for every refusal, so that it
    never tells which usernames are break-glass accounts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.LOCAL_ACCOUNTS_ENABLED:
            where = f" with {sso.provider_name()}" if sso.enabled() else ""
            self.error_messages = {
                **self.error_messages,
                "invalid_login": "Password sign-in is switched off except for break-glass "
                f"accounts: sign in{where} instead. (For a break-glass account: the username or "
                "password is not right.)",
            }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and not password_allowed(username):
            raise self.get_invalid_login_error()
        return super().clean()


class CodeForm(PortalForm):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )


class EnrolForm(PortalForm):
    code = forms.CharField(
        label="Code from the app",
        max_length=10,
        help_text="After adding NeoMesh to the app, type the 6-digit code it shows.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def role_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in ROLE_PERMISSIONS]


class RolesForm(PortalForm):
    roles = forms.MultipleChoiceField(
        label="Roles",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What this person may do. None: they can sign in but see nothing.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = role_choices()

    def groups(self):
        return Group.objects.filter(name__in=self.cleaned_data["roles"])


class InviteForm(RolesForm):
    username = forms.CharField(label="Username", max_length=150)
    email = forms.EmailField(
        label="Email address",
        required=False,
        help_text="Where the set-your-password link goes, when the portal sends email.",
    )
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)

    field_order = ["username", "email", "first_name", "last_name", "roles"]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        username_field = User._meta.get_field("username")
        for validator in username_field.validators:
            validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("Someone already has this username.")
        return username


class ReasonForm(PortalForm):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        help_text="Recorded in the audit trail.",
        widget=forms.TextInput,
    )


class PasswordSetForm(SetPasswordForm):
    """Django's set-password form (its `user` is the invited person, not a reach to narrow by)
    with the portal's error summary."""

    error_summary = PortalFormMixin.error_summary


class ReachForm(PortalForm):
    """Which organisations (whole) and which single mailboxes a person sees, or every one."""

    every_organisation = forms.BooleanField(
        label="Every organisation",
        required=False,
        help_text="NeoMesh's own staff: every organisation and mailbox, now and later.",
    )
    organisations = forms.ModelMultipleChoiceField(
        label="Whole organisations",
        queryset=_ORGANISATION.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Every mailbox of these, including ones added later.",
    )
    mailboxes = forms.ModelMultipleChoiceField(
        label="Only these mailboxes",
        queryset=_MAILBOX.objects.select_related("organisation").order_by("mailbox_id"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Of organisations not chosen whole: this person sees only these of them.",
    )
