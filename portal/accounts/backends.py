"""Password sign-in: Django's, refused when local accounts are off except for break-glass accounts."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from portal.lib.http import client_ip

from .services import break_glass_record


def password_allowed(username: str | None) -> bool:
    return settings.LOCAL_ACCOUNTS_ENABLED or (username or "") in settings.BREAK_GLASS_USERNAMES


class AccountBackend(ModelBackend):
    """Sessions of every user (SSO ones too); passwords only where `password_allowed`."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not password_allowed(username):
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not settings.LOCAL_ACCOUNTS_ENABLED:
            break_glass_record(user=user, ip=client_ip(request) if request else None)
        return user
