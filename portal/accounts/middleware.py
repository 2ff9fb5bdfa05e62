"""`request.reach`: the signed-in person's reach (portal.accounts.reach), decided lazily."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from .reach import Reach


class ReachMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.reach = SimpleLazyObject(lambda: Reach(request.user))
        return self.get_response(request)
