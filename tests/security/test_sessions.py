"""Sessions end after two idle hours and with the browser; signing out ends them on the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_the_session_settings_expire_idle_sessions_and_keep_cookies_from_scripts():
    assert settings.SESSION_COOKIE_AGE == 2 * 60 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST  # the two hours count from the last request
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.X_FRAME_OPTIONS == "DENY"


def test_an_expired_session_goes_back_to_the_login_page(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("dashboard:home")).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_each_request_moves_the_idle_deadline_on(client, admin_user):
    client.force_login(admin_user)
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=5))
    client.get(reverse("dashboard:home"))
    deadline = Session.objects.get().expire_date
    assert deadline > timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_the_session_cookie_lasts_only_as_long_as_the_browser(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:home"))
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_signing_out_ends_the_session_on_the_server(client, admin_user):
    client.force_login(admin_user)
    key = client.session.session_key
    client.post(reverse("accounts:logout"))
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = key  # a stolen cookie replayed
    assert client.get(reverse("dashboard:home")).status_code == 302
