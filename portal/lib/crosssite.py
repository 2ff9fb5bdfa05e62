"""Audited downloads answer only requests a person started from NeoMesh itself.

A download is a GET, and an audited one records that a person read something sensitive. Another site
could make a signed-in person's browser fetch it (a link, an image, a redirect): the session cookie
goes along with top-level navigations, so the audit trail would show a read the person never chose.
Browsers say where a request came from in `Sec-Fetch-Site`: `same-origin` (a link on our pages),
`none` (typed or bookmarked), `same-site` or `cross-site`. A `cross-site` request is refused before the
view runs; clients that send no such header (older browsers, scripts) are not browsers driven by
another site and are let through.
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render


def is_cross_site(request) -> bool:
    return request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site"


def same_site_only(view):
    """Refuse (403, nothing recorded) a request another site's page made the browser send."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if is_cross_site(request):
            return render(request, "403_cross_site.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
