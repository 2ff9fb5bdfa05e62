"""/metrics: who may scrape, and every family checked against rows made by real transfers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from meshcore import MeshClient, TrackingStatus
from portal.messaging import inbox, outbox
from portal.messaging.models import Heartbeat, Message, Status
from portal.messaging.services import message_refresh_tracking, message_requeue
from tests.accounts.access import make_certificate
from tests.messaging.helpers import queue

TOKEN = "scrape-token-for-tests"


def scrape(client, **headers) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}, parsed by prometheus_client itself."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: dict, prefix: str) -> set[tuple]:
    return {key for key in samples if key[0] == prefix}


# Access.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "remote", "authorization", "status"),
    [
        ("", "127.0.0.1", "", 200),
        ("", "10.1.2.3", "", 403),
        (TOKEN, "127.0.0.1", "", 403),  # with a token set, the network rule no longer applies
        (TOKEN, "10.1.2.3", f"Bearer {TOKEN}", 200),
        (TOKEN, "10.1.2.3", "Bearer wrong", 403),
    ],
    ids=["dev-loopback", "dev-other-network", "token-missing", "token-right", "token-wrong"],
)
def test_it_lets_only_the_token_or_an_allowed_network_scrape(
    client, settings, token, remote, authorization, status
):
    settings.METRICS_TOKEN = token
    headers = {"REMOTE_ADDR": remote}
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization
    response = client.get("/metrics", **headers)
    assert response.status_code == status
    if status == 403:
        assert b"neomesh_" not in response.content


@pytest.mark.django_db
def test_it_refuses_every_scrape_in_production_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_REQUIRE_TOKEN = True
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")  # a reverse proxy on this host
    assert response.status_code == 403
    assert (
        response.content == b"Metrics are off: production mode requires METRICS_TOKEN to be set.\n"
    )


@pytest.mark.django_db
def test_it_allows_the_networks_configured(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


# Values, from real sends and polls against the mesh-sandbox.


@pytest.fixture
def scraper(client, settings):
    settings.METRICS_TOKEN = TOKEN
    return lambda: scrape(client)


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_it_counts_messages_and_bytes_moved_and_never_counts_down(
    sandbox_mailboxes, sandbox, scraper
):
    sender, recipient = sandbox_mailboxes
    sent = [queue(sender, b"first message"), queue(sender, b"second")]  # 13 + 6 bytes
    for message in sent:
        assert outbox.message_send(message_id=message.pk) == Status.ACCEPTED
    rejected = queue(sender, b"to nobody", to="NOSUCHBOX1")
    assert outbox.message_send(message_id=rejected.pk) == Status.FAILED
    waiting = queue(sender, b"still queued")
    assert inbox.mailbox_poll(mailbox=recipient).acknowledged == 2

    samples = scraper()
    # Only what MESH accepted counts out: not the failed message, not the queued one.
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="out") == 2
    assert value(samples, "neomesh_message_bytes_total", mailbox="X26ABC1", direction="out") == 19
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC2", direction="in") == 2
    assert value(samples, "neomesh_message_bytes_total", mailbox="X26ABC2", direction="in") == 19
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="in") is None
    assert value(samples, "neomesh_failures_total", mailbox="X26ABC1", code="12") == 1
    assert value(samples, "neomesh_failed_messages", mailbox="X26ABC1", code="12") == 1
    assert value(samples, "neomesh_outbox_depth", mailbox="X26ABC1") == 1
    assert value(samples, "neomesh_outbox_depth", mailbox="X26ABC2") == 0

    # A person resends the failed message: the gauge drops, no counter does.
    rejected.refresh_from_db()
    message_requeue(message=rejected)
    samples = scraper()
    assert value(samples, "neomesh_failures_total", mailbox="X26ABC1", code="12") == 1
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="out") == 2
    assert names(samples, "neomesh_failed_messages") == set()
    assert value(samples, "neomesh_outbox_depth", mailbox="X26ABC1") == 2
    # It fails again: a second failure.
    assert outbox.message_send(message_id=rejected.pk) == Status.FAILED
    # An outcome unknown is not a message moved either.
    Message.objects.filter(pk=waiting.pk).update(status=Status.UNCERTAIN)
    samples = scraper()
    assert value(samples, "neomesh_failures_total", mailbox="X26ABC1", code="12") == 2
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="out") == 2
    assert value(samples, "neomesh_outbox_depth", mailbox="X26ABC1") == 0


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_it_counts_a_failure_once_when_tracking_and_a_report_both_tell_of_it(
    sandbox_mailboxes, sandbox, scraper, monkeypatch
):
    sender, _ = sandbox_mailboxes
    message = queue(sender, b"never collected")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    # The sandbox never reports a message undeliverable by tracking: only that answer is made up.
    undeliverable = TrackingStatus(
        message_id=message.mesh_message_id,
        status="undeliverable",
        status_code="14",
        status_description="not collected",
    )
    monkeypatch.setattr(MeshClient, "track", lambda self, message_id: undeliverable)
    assert message_refresh_tracking(message=message) == "undeliverable"
    monkeypatch.undo()
    # ... and then MESH's non-delivery report arrives.
    sandbox.report_not_collected(message)
    assert inbox.mailbox_poll(mailbox=sender).reports == 1
    assert Message.objects.get(pk=message.pk).status == Status.FAILED

    samples = scraper()
    assert value(samples, "neomesh_failures_total", mailbox="X26ABC1", code="14") == 1
    assert value(samples, "neomesh_failed_messages", mailbox="X26ABC1", code="14") == 1
    # It was sent, and the report itself is a message received.
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="out") == 1
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="in") == 1


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_scrape_reads_a_fixed_number_of_rows_however_many_messages(
    sandbox_mailboxes, scraper, django_assert_max_num_queries
):
    sender, _ = sandbox_mailboxes
    for n in range(3):
        outbox.message_send(message_id=queue(sender, b"x" * (n + 1)).pk)
    with django_assert_max_num_queries(12):
        samples = scraper()
    assert value(samples, "neomesh_messages_total", mailbox="X26ABC1", direction="out") == 3
    assert value(samples, "neomesh_message_bytes_total", mailbox="X26ABC1", direction="out") == 6


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_it_reports_ages_lag_and_certificates(sandbox_mailboxes, scraper):
    sender, recipient = sandbox_mailboxes
    now = timezone.now()
    old, young = queue(sender, b"old"), queue(sender, b"young")
    for message in (old, young):
        outbox.message_send(message_id=message.pk)
        message.refresh_from_db()
    # Accepted by MESH two days ago and not yet acknowledged by the recipient.
    Message.objects.filter(pk=old.pk).update(accepted_at=now - timedelta(days=2))
    assert inbox.mailbox_poll(mailbox=recipient).acknowledged == 2
    # One message stored here three hours ago whose acknowledgement to MESH did not go through.
    stored = Message.objects.inbound().get(mesh_message_id=young.mesh_message_id)
    Message.objects.filter(pk=stored.pk).update(
        status=Status.RECEIVED, received_at=now - timedelta(hours=3)
    )
    type(sender).objects.filter(pk=sender.pk).update(
        last_poll_at=now - timedelta(minutes=10), inbox_backlog=4, last_handshake_ok=True
    )
    make_certificate(sender, status="active", not_after=now + timedelta(days=30))
    Heartbeat.objects.create(name="poll_due", at=now - timedelta(seconds=42))

    samples = scraper()
    age = value(samples, "neomesh_oldest_sent_unacknowledged_seconds", mailbox="X26ABC1")
    assert 2 * 86400 <= age < 2 * 86400 + 60
    assert names(samples, "neomesh_oldest_sent_unacknowledged_seconds") == {
        ("neomesh_oldest_sent_unacknowledged_seconds", (("mailbox", "X26ABC1"),))
    }
    age = value(samples, "neomesh_oldest_received_unacknowledged_seconds", mailbox="X26ABC2")
    assert 3 * 3600 <= age < 3 * 3600 + 60
    assert 600 <= value(samples, "neomesh_poll_lag_seconds", mailbox="X26ABC1") < 660
    assert 0 <= value(samples, "neomesh_poll_lag_seconds", mailbox="X26ABC2") < 60
    assert value(samples, "neomesh_inbox_backlog", mailbox="X26ABC1") == 4
    assert value(samples, "neomesh_inbox_backlog", mailbox="X26ABC2") == 0
    assert value(samples, "neomesh_handshake_ok", mailbox="X26ABC1") == 1
    assert 29.99 < value(samples, "neomesh_certificate_days_left", mailbox="X26ABC1") <= 30
    assert value(samples, "neomesh_certificate_days_left", mailbox="X26ABC2") is None
    assert 42 <= value(samples, "neomesh_worker_heartbeat_age_seconds", job="poll_due") < 100

    # Once tracking sees the recipient's acknowledgement, the old message no longer counts.
    Message.objects.filter(pk=old.pk).update(status=Status.ACKNOWLEDGED)
    samples = scraper()
    age = value(samples, "neomesh_oldest_sent_unacknowledged_seconds", mailbox="X26ABC1")
    assert age < 60
