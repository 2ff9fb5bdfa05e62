"""Access control for views: sign-in first, then a permission; lacking it is a 403, not a redirect."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def permission_required(*perms: str):
    """Anonymous users go to the login page; signed-in users without every permission get 403.

    Django's own decorator sends signed-in users back to the login page, which reads like a broken
    session to the person refused. This one says "not allowed" instead.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
