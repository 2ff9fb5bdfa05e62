"""S3 (a real moto server process) and signed webhooks (a real HTTP receiver in this process)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from portal.audit.actors import SYSTEM
from portal.integrations import destinations
from portal.integrations.models import Destination, DestinationKind
from portal.integrations.services import deliveries_plan, delivery_run, destination_probe
from tests.factories import make_mailbox

from .helpers import Receiver, received_message, route_to

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def mailbox():
    return make_mailbox("X26ABC2")


@pytest.fixture
def bucket(s3_server):
    s3_server.reset()
    s3_server.client().create_bucket(
        Bucket="landing", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    return s3_server


def s3(server, bucket="landing", **extra) -> Destination:
    return Destination.objects.create(
        name=f"s3-{bucket}",
        kind=DestinationKind.S3,
        secret="test",
        settings={
            "endpoint_url": server.url,
            "bucket": bucket,
            "access_key_id": "test",
            "region": "eu-west-2",
            **extra,
        },
    )


def run(message):
    (delivery,) = deliveries_plan(message=message)
    delivery_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_it_uploads_a_large_payload_named_by_the_mesh_id_with_metadata(mailbox, bucket):
    route_to(mailbox, s3(bucket))
    data = bytes(range(256)) * (20 * MiB // 256)  # multipart: above the 8 MiB threshold
    message = received_message(mailbox, data, subject="Résultats")
    delivery = run(message)
    assert delivery.state == "delivered", delivery.last_error
    key = f"inbound/X26ABC2/{message.mesh_message_id}"
    assert delivery.location == f"s3://landing/{key}"
    obj = bucket.client().get_object(Bucket="landing", Key=key)
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert obj["Metadata"]["mesh_message_id"] == message.mesh_message_id
    assert obj["Metadata"]["subject"] == "R?sultats"  # object metadata is ASCII
    assert obj["Metadata"]["sha256"] == message.payload_sha256


def test_a_retry_after_a_crash_writes_no_second_copy(mailbox, bucket):
    destination = s3(bucket)
    message = received_message(mailbox, b"exactly once")
    destinations.deliver_s3(destination, message)
    first = bucket.client().head_object(
        Bucket="landing", Key=f"inbound/X26ABC2/{message.mesh_message_id}"
    )
    destinations.deliver_s3(destination, message)  # the worker died before recording success
    listing = bucket.client().list_objects_v2(Bucket="landing")
    assert listing["KeyCount"] == 1
    again = bucket.client().head_object(
        Bucket="landing", Key=f"inbound/X26ABC2/{message.mesh_message_id}"
    )
    assert again["LastModified"] == first["LastModified"] and again["ETag"] == first["ETag"]


def test_a_bucket_that_does_not_exist_is_a_failure_with_its_reason(mailbox, bucket):
    route_to(mailbox, s3(bucket, bucket="no-such-bucket"))
    delivery = run(received_message(mailbox))
    assert delivery.state == "failed"
    assert delivery.last_error == "The bucket no-such-bucket does not exist."


def test_the_s3_probe_writes_and_removes_an_object(bucket):
    ok, text = destination_probe(destination=s3(bucket), actor=SYSTEM)
    assert ok, text
    assert bucket.client().list_objects_v2(Bucket="landing")["KeyCount"] == 0


def webhook(url, secret="a-webhook-secret", **extra) -> Destination:
    return Destination.objects.create(
        name="hook",
        kind=DestinationKind.WEBHOOK,
        secret=secret,
        settings={"url": url, "timeout": 2, **extra},
    )


def test_it_posts_a_signed_notice_and_a_2xx_confirms(mailbox):
    with Receiver("a-webhook-secret") as receiver:
        route_to(mailbox, webhook(receiver.url, body_limit=1024))
        message = received_message(mailbox, b"small body")
        delivery = run(message)
    assert delivery.state == "delivered", delivery.last_error
    assert receiver.bad_signatures == 0
    (notice,) = receiver.received
    assert notice["message"]["mesh_message_id"] == message.mesh_message_id
    assert base64.b64decode(notice["body_base64"]) == b"small body"


def test_a_wrong_secret_is_refused_by_the_receiver(mailbox):
    with Receiver("the-right-secret") as receiver:
        route_to(mailbox, webhook(receiver.url, secret="the-wrong-secret"))
        delivery = run(received_message(mailbox))
    assert receiver.bad_signatures == 1
    assert delivery.state == "failed" and "answered 401" in delivery.last_error


@pytest.mark.parametrize(
    ("receiver_args", "reason"),
    [
        ({"status": 500}, "answered 500"),
        ({"status": 302, "location": "http://elsewhere/"}, "redirect"),
        ({"delay": 4}, "did not answer within 2 seconds"),
    ],
)
def test_a_failing_webhook_is_a_failure_with_its_reason(mailbox, receiver_args, reason):
    with Receiver("s", **receiver_args) as receiver:
        route_to(mailbox, webhook(receiver.url, secret="s"))
        delivery = run(received_message(mailbox))
    assert delivery.state == "failed"
    assert reason in delivery.last_error


class WorkerDied(BaseException):
    """Stands in for SIGKILL: nothing in the worker catches it, so no clean-up runs."""


def test_a_worker_killed_mid_upload_leaves_one_byte_exact_object_after_the_retry(
    mailbox, bucket, monkeypatch
):
    from django.utils import timezone

    from portal.integrations.models import Delivery
    from portal.lib import payloads

    route_to(mailbox, s3(bucket))
    data = bytes(range(256)) * (24 * MiB // 256)
    message = received_message(mailbox, data)
    (delivery,) = deliveries_plan(message=message)
    real_open = payloads.open_payload

    class DiesAfter:
        def __init__(self, handle):
            self.handle, self.read_so_far = handle, 0

        def read(self, size=-1):
            if self.read_so_far > 10 * MiB:
                raise WorkerDied()
            block = self.handle.read(size)
            self.read_so_far += len(block)
            return block

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(payloads, "open_payload", lambda name: DiesAfter(real_open(name)))
    with pytest.raises(WorkerDied):
        delivery_run(delivery_id=delivery.pk)
    monkeypatch.setattr(payloads, "open_payload", real_open)
    assert (
        bucket.client().list_objects_v2(Bucket="landing")["KeyCount"] == 0
    )  # nothing half-visible
    assert delivery_run(delivery_id=delivery.pk) == "not due"  # the dead worker's lease still holds
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # lease passed
    assert delivery_run(delivery_id=delivery.pk) == "delivered"
    listing = bucket.client().list_objects_v2(Bucket="landing")
    assert listing["KeyCount"] == 1
    body = (
        bucket.client()
        .get_object(Bucket="landing", Key=listing["Contents"][0]["Key"])["Body"]
        .read()
    )
    assert body == data
