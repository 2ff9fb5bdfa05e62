"""Azure Blob destinations with the official SDK, against a real Azurite process: the MESH id
names the blob, the MESH metadata is its metadata, large payloads go up in blocks streamed from the
local copy, and a retry (after a crash too) never writes a second copy or overwrites another blob."""

from __future__ import annotations

import hashlib

import pytest
from azure.core.exceptions import ResourceExistsError
from django.utils import timezone

from portal.audit.actors import SYSTEM
from portal.integrations import destinations
from portal.integrations.models import Delivery, Destination, DestinationKind
from portal.integrations.services import deliveries_plan, delivery_run, destination_probe
from tests.factories import make_mailbox
from tests.peers.azurite import ACCOUNT, KEY

from .helpers import received_message, route_to

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def container(azurite, request):
    """A fresh container for this test on the session's Azurite."""
    name = f"landing{abs(hash(request.node.nodeid)) % 10**8}"
    client = azurite.service().get_container_client(name)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    yield client
    client.delete_container()


@pytest.fixture
def mailbox():
    return make_mailbox("X26ABC2")


def azure(azurite, container: str, key: str = KEY) -> Destination:
    return Destination.objects.create(
        name=f"azure-{container}",
        kind=DestinationKind.AZURE,
        secret=key,
        settings={"account_url": azurite.url, "account_name": ACCOUNT, "container": container},
    )


def run(message) -> Delivery:
    (delivery,) = Delivery.objects.filter(message=message) or deliveries_plan(message=message)
    delivery_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_it_streams_a_payload_in_blocks_named_by_the_mesh_id_with_metadata(
    mailbox, azurite, container, monkeypatch
):
    monkeypatch.setattr(destinations, "AZURE_BLOCK", 1 * MiB)  # several blocks from 3 MiB
    route_to(mailbox, azure(azurite, container.container_name))
    data = bytes(range(256)) * (3 * MiB // 256) + b"tail"
    message = received_message(mailbox, data, subject="Pathology results")
    delivery = run(message)
    assert delivery.state == "delivered", delivery.last_error
    blob = container.get_blob_client(f"inbound/X26ABC2/{message.mesh_message_id}")
    assert delivery.location.endswith(f"/inbound/X26ABC2/{message.mesh_message_id}")
    assert blob.download_blob().readall() == data
    properties = blob.get_blob_properties()
    assert properties.metadata["mesh_message_id"] == message.mesh_message_id
    assert properties.metadata["workflow_id"] == "TEST_WORKFLOW"
    assert properties.metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(blob.get_block_list("committed")[0]) == 4  # streamed in 1 MiB blocks

    # Delivered again (a replay): recognised by its sha256, nothing written a second time.
    Delivery.objects.filter(pk=delivery.pk).update(
        state="pending", attempts=0, next_attempt_at=timezone.now()
    )
    assert run(message).state == "delivered"
    assert blob.get_blob_properties().etag == properties.etag
    assert [b.name for b in container.list_blobs()] == [blob.blob_name]


def test_a_worker_killed_mid_upload_leaves_nothing_visible_and_the_retry_one_exact_blob(
    mailbox, azurite, container, monkeypatch
):
    from portal.lib import payloads

    monkeypatch.setattr(destinations, "AZURE_BLOCK", 1 * MiB)
    route_to(mailbox, azure(azurite, container.container_name))
    data = bytes(reversed(range(256))) * (3 * MiB // 256)
    message = received_message(mailbox, data)
    (delivery,) = deliveries_plan(message=message)
    real_open = payloads.open_payload

    class WorkerDied(BaseException):
        """Stands in for SIGKILL: nothing in the worker catches it."""

    class DiesAfterTwoBlocks:
        def __init__(self, handle):
            self.handle, self.read_bytes = handle, 0

        def read(self, size=-1):
            if self.read_bytes >= 2 * MiB:
                raise WorkerDied
            block = self.handle.read(size)
            self.read_bytes += len(block)
            return block

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(payloads, "open_payload", lambda name: DiesAfterTwoBlocks(real_open(name)))
    with pytest.raises(WorkerDied):
        delivery_run(delivery_id=delivery.pk)
    assert list(container.list_blobs()) == []  # staged blocks only: no blob
    monkeypatch.setattr(payloads, "open_payload", real_open)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # lease over
    delivery = run(message)
    assert delivery.state == "delivered", delivery.last_error
    (only,) = list(container.list_blobs())
    assert container.get_blob_client(only.name).download_blob().readall() == data


def test_another_blob_under_the_name_is_never_overwritten(mailbox, azurite, container):
    route_to(mailbox, azure(azurite, container.container_name))
    message = received_message(mailbox, b"ours")
    blob = container.get_blob_client(f"inbound/X26ABC2/{message.mesh_message_id}")
    blob.upload_blob(b"someone else's file")
    delivery = run(message)
    assert delivery.state == "failed" and "not overwritten" in delivery.last_error
    assert blob.download_blob().readall() == b"someone else's file"


def test_a_missing_container_and_a_wrong_key_fail_with_their_reasons(mailbox, azurite):
    route_to(mailbox, azure(azurite, "no-such-container"))
    delivery = run(received_message(mailbox))
    assert delivery.state == "failed"
    assert "container no-such-container does not exist" in delivery.last_error
    wrong = azure(azurite, "landing", key="d3Jvbmcta2V5" * 8)
    ok, text = destination_probe(destination=wrong, actor=SYSTEM)
    assert not ok and "refused the credentials" in text


def test_the_probe_writes_and_removes_a_blob(azurite, container):
    ok, text = destination_probe(destination=azure(azurite, container.container_name), actor=SYSTEM)
    assert ok and text.startswith("Wrote and removed")
    assert list(container.list_blobs()) == []
