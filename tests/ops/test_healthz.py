"""/healthz: database, broker and worker heartbeat, for load balancers (no login)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.conf import Conf

from portal.messaging.models import Heartbeat
from tests.sandbox import free_port

pytestmark = pytest.mark.django_db


def beat(seconds_ago: float) -> None:
    Heartbeat.objects.create(
        name="sweep_outbox", at=timezone.now() - timedelta(seconds=seconds_ago), by="host:1:2"
    )


def test_it_is_healthy_when_database_broker_and_worker_answer(client):
    beat(10)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")
    assert body["worker"].startswith("ok (")
    assert "no-cache" in response["Cache-Control"]


def test_it_answers_head_without_login_and_refuses_post(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_it_stays_in_the_load_balancer_when_only_the_workers_are_down(client):
    beat(400)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["worker"] == "failing: last worker heartbeat 400 s ago"


@pytest.mark.parametrize(
    ("seconds_ago", "status", "worker"),
    [
        (10, 200, "ok (10 s ago)"),
        (400, 503, "failing: last worker heartbeat 400 s ago"),
        (None, 503, "failing: no worker has run yet"),
    ],
    ids=["fresh", "stale", "never"],
)
def test_it_fails_strict_mode_without_a_recent_worker_heartbeat(
    client, seconds_ago, status, worker
):
    if seconds_ago is not None:
        beat(seconds_ago)
    response = client.get("/healthz?strict=1")
    assert response.status_code == status
    assert response.json()["worker"] == worker
    assert response.json()["status"] == ("ok" if status == 200 else "failing")


def test_it_fails_when_the_database_does_not_answer(client, monkeypatch):
    beat(10)

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 10.9.8.7, port 5432 failed")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("failing", "failing: OperationalError")
    assert "10.9.8.7" not in response.content.decode()  # driver details stay in the log


def test_it_fails_when_the_broker_does_not_answer(client, monkeypatch):
    beat(10)
    # A real Redis broker on a port where nothing listens.
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "DJANGO_REDIS", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("failing", "ok")
    assert body["broker"] == "failing: ConnectionError"
