"""In production, a load balancer and Prometheus reach /healthz and /metrics by the backend's IP
address over plain HTTP: no DisallowedHost (400), no redirect to HTTPS (301)."""

from __future__ import annotations

import json

import pytest

from tests.security.test_production import production_env, run

BACKEND = "10.0.3.7:8000"  # how a load balancer addresses one web process
TOKEN = "scrape-token-for-tests"


@pytest.fixture
def production(settings):
    settings.ALLOWED_HOSTS = ["neomesh.example.nhs.uk"]
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_REQUIRE_TOKEN = True
    settings.METRICS_TOKEN = TOKEN
    return settings


@pytest.mark.django_db
def test_it_answers_health_checks_by_ip_over_plain_http(client, production):
    assert client.get("/healthz", HTTP_HOST=BACKEND).status_code == 200
    assert client.head("/healthz", HTTP_HOST=BACKEND).status_code == 200
    # The rest of the site keeps both guards.
    assert client.get("/accounts/login/", HTTP_HOST=BACKEND).status_code == 400
    page = client.get("/accounts/login/", HTTP_HOST="neomesh.example.nhs.uk")
    assert page.status_code == 301
    assert page["Location"] == "https://neomesh.example.nhs.uk/accounts/login/"


@pytest.mark.django_db
def test_it_serves_metrics_by_ip_over_plain_http_only_with_the_token(client, production):
    scrape = client.get("/metrics", HTTP_HOST=BACKEND, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert scrape.status_code == 200
    assert b"neomesh_outbox_depth" in scrape.content
    assert client.get("/metrics", HTTP_HOST=BACKEND).status_code == 403


# Run in a child process: settings (middleware order, redirect exemptions) are read once.
PROBE = """
import json, django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
backend = Client(HTTP_HOST="10.0.3.7:8000")
health = backend.get("/healthz")
scrape = backend.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests")
print(json.dumps({
    "healthz": [health.status_code, health.json()],
    "metrics": [scrape.status_code, scrape.content.decode()[:2000]],
    "page": backend.get("/accounts/login/").status_code,
}))
"""


def probe(tmp_path, **env) -> dict:
    result = run(["-c", PROBE], production_env(tmp_path, **env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_mode_answers_health_checks_and_scrapes_by_ip(tmp_path):
    seen = probe(tmp_path, METRICS_TOKEN=TOKEN)
    status, body = seen["healthz"]
    assert status == 200, body
    assert (body["database"], body["broker"]) == ("ok", "ok")
    assert seen["metrics"][0] == 200
    assert "# TYPE neomesh_messages_total counter" in seen["metrics"][1]
    assert seen["page"] == 400


def test_production_mode_refuses_metrics_without_a_configured_token(tmp_path):
    # The test client comes from 127.0.0.1, as every request does behind a local reverse proxy.
    status, text = probe(tmp_path, METRICS_TOKEN=None)["metrics"]
    assert status == 403
    assert text == "Metrics are off: production mode requires METRICS_TOKEN to be set.\n"
