"""`request.reach`: the signed-in person's reach (portal.accounts.reach), decided lazily. And after a
password sign-in, a person who needs a second factor sees no page until they pass it."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from .factors import factor_required, factor_url, factor_verified
from .reach import Reach


class ReachMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.reach = SimpleLazyObject(lambda: Reach(request.user))
        return self.get_response(request)


# Pages open before the factor: the factor's own, signing in and out, and static files. (An invited
# person setting their password is not signed in yet.)
OPEN_URL_NAMES = (
    "accounts:factor_verify",
    "accounts:factor_enrol",
    "accounts:login",
    "accounts:logout",
)


class FactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._open: tuple[str, ...] | None = None

    def open_paths(self) -> tuple[str, ...]:
        if self._open is None:
            names = tuple(reverse(name) for name in OPEN_URL_NAMES)
            self._open = (*names, "/" + settings.STATIC_URL.lstrip("/"))
        return self._open

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not factor_verified(request)
            and not request.path_info.startswith(self.open_paths())
            and factor_required(user)
        ):
            return redirect(factor_url(request))
        return self.get_response(request)
