"""The OpenAPI document is generated from the code, validates, lists every route; docs are local."""

from __future__ import annotations

import re

import pytest
import requests
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

pytestmark = [pytest.mark.django_db(transaction=True)]


def _api_routes() -> set[str]:
    """Every /api/v1/ route in the URL configuration, as OpenAPI paths (`{id}` for `<int:pk>`)."""
    [api] = [
        p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.app_name == "api"
    ]
    routes = set()
    for pattern in api.url_patterns:
        if isinstance(pattern, URLPattern) and pattern.name not in (None, "schema", "docs"):
            routes.add("/api/" + re.sub(r"<int:pk>", "{id}", str(pattern.pattern)))
    return routes


def test_it_serves_a_valid_document_listing_every_route(live_server):
    answer = requests.get(live_server.url + "/api/v1/openapi.json", timeout=30)
    assert answer.status_code == 200
    document = answer.json()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert _api_routes() and _api_routes() <= set(document["paths"])
    assert {"apiToken", "portalSession"} <= set(document["components"]["securitySchemes"])


def test_it_shows_the_docs_page_from_our_own_static_files(live_server):
    page = requests.get(live_server.url + "/api/v1/docs/", timeout=30)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "<script>" not in page.text.replace(" ", "")  # no inline script: CSP unchanged
    for source in sources:
        assert requests.get(live_server.url + source, timeout=30).status_code == 200, source
