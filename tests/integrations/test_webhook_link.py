"""The webhook notice of a payload too large to carry holds a signed, expiring link; the portal
serves the payload by it only with the signature intact and before the expiry, and audits each fetch."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from portal.audit.models import AuditRecord
from portal.integrations.links import payload_link
from portal.integrations.models import Destination, DestinationKind
from portal.integrations.services import deliveries_plan, delivery_run
from tests.factories import make_mailbox

from .helpers import Receiver, received_message, route_to

pytestmark = pytest.mark.django_db

BODY = b"a payload larger than the notice may carry " * 40


@pytest.fixture
def delivered(settings):
    """A message whose notice the receiver got, with the link in it (the body is over the limit)."""
    settings.INTEGRATIONS_PUBLIC_URL = "https://neomesh.example.org"
    mailbox = make_mailbox("X26ABC2")
    with Receiver("a-webhook-secret") as receiver:
        hook = Destination.objects.create(
            name="hook",
            kind=DestinationKind.WEBHOOK,
            secret="a-webhook-secret",
            settings={"url": receiver.url, "timeout": 2, "body_limit": 64, "link_ttl": 600},
        )
        route_to(mailbox, hook)
        message = received_message(mailbox, BODY)
        (delivery,) = deliveries_plan(message=message)
        assert delivery_run(delivery_id=delivery.pk) == "delivered"
    (notice,) = receiver.received
    return notice, message, hook


def test_it_sends_a_signed_expiring_link_and_serves_the_payload_by_it_audited(client, delivered):
    notice, message, _ = delivered
    assert "body_base64" not in notice
    url = urlsplit(notice["payload_url"])
    assert url.scheme == "https" and url.netloc == "neomesh.example.org"
    assert notice["payload_url_expires_at"].endswith("Z")
    response = client.get(url.path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == BODY
    assert response["X-Payload-SHA256"] == message.payload_sha256
    fetched = AuditRecord.objects.get(action="delivery.payload_fetched")
    assert fetched.object_id == str(message.pk) and "payload link for hook" in fetched.actor_label
    assert client.post(url.path).status_code == 405


def test_it_refuses_an_altered_link(client, delivered):
    path = urlsplit(delivered[0]["payload_url"]).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    response = client.get(path.replace(token, altered))
    assert response.status_code == 403 and b"not valid" in response.content
    assert not AuditRecord.objects.filter(action="delivery.payload_fetched").exists()


def test_it_refuses_an_expired_link(client, delivered):
    _, message, hook = delivered
    url, _ = payload_link(destination=hook, message=message, now=time.time() - 601)
    response = client.get(urlsplit(url).path)
    assert response.status_code == 410 and b"expired" in response.content


def test_a_link_stops_working_when_its_destination_is_disabled_or_the_payload_purged(
    client, delivered
):
    from django.utils import timezone

    notice, message, hook = delivered
    path = urlsplit(notice["payload_url"]).path
    Destination.objects.filter(pk=hook.pk).update(enabled=False)
    assert client.get(path).status_code == 403
    Destination.objects.filter(pk=hook.pk).update(enabled=True)
    type(message).objects.filter(pk=message.pk).update(payload_purged_at=timezone.now())
    assert client.get(path).status_code == 410
