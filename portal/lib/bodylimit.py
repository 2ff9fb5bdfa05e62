"""Request bodies are refused by their declared length, before a byte of them is read.

Django reads a multipart upload in full (to memory or a temporary file) before any form can look at
a file's size, so a 20 GB upload to a page that accepts 1 MB fills the disk first and is refused
after. `BodyLimitMiddleware` compares `Content-Length` with the limit of the view the request is for
and answers 413 straight away. Views that take uploads declare their own limit with `@body_limit`;
every other view gets `REQUEST_BODY_MAX_BYTES`. The reverse proxy in front keeps its own, larger
limit (docs/deployment.md): this one is per page.

Its `process_view` runs before CsrfViewMiddleware's (it is listed first), which reads the body.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat

# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD_BYTES = 256 * 1024


def body_limit(limit: Callable[[], int]):
    """Declare a view's largest accepted file (a callable, so settings are read per request)."""

    def decorator(view):
        view.max_upload_bytes = limit
        return view

    return decorator


def checks_own_body(view):
    """For a view that compares Content-Length with its own limit before reading (the API's send,
    which answers in its own error format): the middleware leaves its requests alone."""
    view.checks_own_body = True
    return view


def view_limits(view) -> tuple[int, int]:
    """(the largest body accepted, the largest file to name in the refusal) for this view."""
    declared = getattr(view, "max_upload_bytes", None)
    if declared is None:
        return settings.REQUEST_BODY_MAX_BYTES, settings.REQUEST_BODY_MAX_BYTES
    return declared() + FORM_OVERHEAD_BYTES, declared()


def declared_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


class BodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, view_args, view_kwargs):
        if getattr(view, "checks_own_body", False):
            return None
        length = declared_length(request)
        limit, file_limit = view_limits(view)
        if length is not None and 0 <= length <= limit:
            return None
        context = {"limit": filesizeformat(file_limit), "unreadable": length is None}
        response = render(request, "413.html", context, status=400 if length is None else 413)
        # The unread body must not be taken for the next request on this connection.
        response["Connection"] = "close"
        return response
