from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from . import sso
from .backends import password_allowed


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
