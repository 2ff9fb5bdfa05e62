"""/favicon.ico, and the friendly "Page not found" page, under DEBUG too (the demo, `make run`, runs with DEBUG on).

Without DEBUG, Django's own handler renders templates/404.html. With DEBUG it shows its technical
404 page instead, which lists every URL pattern: never what a person trying NeoMesh should see.
This middleware renders templates/404.html in both cases: for an address that matches no URL (the
response comes back with no resolver match) and for a view that raises Http404. Responses a view
makes itself with status 404 (the API's JSON errors) are left alone.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static


def not_found_page(request):
    return render(request, "404.html", {"request_path": request.path}, status=404)


def favicon(request):
    """/favicon.ico, which browsers ask for where a page names no icon: the static SVG icon."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


class FriendlyNotFoundMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            return not_found_page(request)
        return response

    def process_exception(self, request, exception):
        if settings.DEBUG and isinstance(exception, Http404):
            return not_found_page(request)
        return None
