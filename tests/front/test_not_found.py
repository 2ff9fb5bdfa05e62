"""The friendly 404 page in the demo (DEBUG on) as in production, and the favicon."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False], ids=["demo-debug", "production"])
def test_it_shows_the_friendly_page_for_a_missing_page(client, admin_user, settings, debug):
    settings.DEBUG = debug
    client.force_login(admin_user)
    for url in (
        "/no/such/page/",  # matches no URL
        reverse("messaging:detail", args=[987654]),  # a view's Http404
    ):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 404
        assert "<h1>Page not found</h1>" in html and "Go to the dashboard" in html
        assert "URLconf" not in html and "Using the URLconf" not in html  # not Django's page
        # django-csp leaves DEBUG's 404s without a policy (for Django's own page); else it is set.
        assert debug or "Content-Security-Policy" in response.headers
        assert 'aria-label="Main"' in html  # the frame, with the navigation, as on every page


def test_it_still_adds_the_missing_slash_first(client, admin_user, settings):
    settings.DEBUG = True
    client.force_login(admin_user)
    response = client.get("/messages")
    assert response.status_code == 301 and response["Location"] == "/messages/"


def test_it_leaves_the_api_json_404_alone(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/messages/987654/")
    assert response.status_code in {401, 403, 404}
    assert "Page not found</h1>" not in response.content.decode()


def test_the_favicon_is_served_without_a_404(client, admin_user):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/img/favicon.svg"
    client.force_login(admin_user)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    html = client.get("/admin/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg"' in html  # the admin names it too
