"""Deliveries: planned from the `message.received` event, retried, dead-lettered, replayed (audited),
and end to end from a real mesh-sandbox to a directory."""

from __future__ import annotations

import json

import pytest

from portal.audit.models import AuditRecord
from portal.audit.services import Actor
from portal.events.services import events_dispatch
from portal.integrations.models import Delivery, Destination, DestinationKind
from portal.integrations.services import (
    deliveries_plan,
    delivery_replay,
    delivery_run,
    route_for,
    route_replay_dead_letters,
)
from portal.messaging import inbox, outbox
from tests.factories import make_mailbox, make_user
from tests.messaging.helpers import queue

from .helpers import received_message, route_to


def directory(path, name="drop") -> Destination:
    return Destination.objects.create(
        name=name, kind=DestinationKind.DIRECTORY, settings={"path": str(path)}
    )


@pytest.mark.django_db
def test_the_most_specific_route_wins_and_no_route_means_held(tmp_path):
    mailbox = make_mailbox("X26ABC2", workflows=("PATH_RESULTS", "OTHER"))
    anything = route_to(mailbox, pattern="*", name="any")
    prefix = route_to(mailbox, pattern="PATH_*", name="prefix")
    exact = route_to(mailbox, pattern="PATH_RESULTS", name="exact")
    assert route_for(received_message(mailbox, workflow_id="PATH_RESULTS")) == exact
    assert route_for(received_message(mailbox, workflow_id="PATH_OTHER")) == prefix
    assert route_for(received_message(mailbox, workflow_id="OTHER")) == anything
    anything.delete()
    message = received_message(mailbox, workflow_id="OTHER")
    assert route_for(message) is None and deliveries_plan(message=message) == []


@pytest.mark.django_db
def test_it_dead_letters_after_the_limit_then_a_person_replays_it(tmp_path, settings):
    settings.INTEGRATIONS_DELIVERY_MAX_ATTEMPTS = 3
    mailbox = make_mailbox("X26ABC2")
    target = tmp_path / "drop"
    route = route_to(mailbox, directory(target))
    message = received_message(mailbox, b"kept safe")
    (delivery,) = deliveries_plan(message=message)
    assert deliveries_plan(message=message) == []  # planned once
    for _ in range(3):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
        delivery_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == "dead_lettered" and delivery.attempts == 3
    assert "does not exist" in delivery.last_error
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    assert delivery_run(delivery_id=delivery.pk) == "not due"  # a dead letter waits for a person

    target.mkdir()  # the directory is mounted again
    person = make_user(username="ops")
    assert route_replay_dead_letters(route=route, actor=Actor.person(user=person)) == 1
    assert delivery_run(delivery_id=delivery.pk) == "delivered"
    files = [p for p in target.rglob("*") if p.is_file() and p.suffix != ".json"]
    assert [p.read_bytes() for p in files] == [b"kept safe"]
    trail = AuditRecord.objects.filter(action="route.dead_letters_replayed").get()
    assert trail.actor_label == "ops" and "1 dead-lettered" in trail.detail
    with pytest.raises(ValueError):
        delivery_replay(
            delivery=Delivery.objects.get(pk=delivery.pk), actor=Actor.person(user=person)
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_it_delivers_a_message_received_from_mesh_to_a_directory(sandbox_mailboxes, tmp_path):
    sender, recipient = sandbox_mailboxes
    target = tmp_path / "drop"
    target.mkdir()
    route_to(recipient, directory(target), pattern="TEST_*")
    # The dispatcher has never run (NeoMesh just deployed) when the message arrives: routed anyway.
    data = b"pathology results\n" * 1000
    message = queue(sender, data, filename="results.txt")
    outbox.message_send(message_id=message.pk)
    assert inbox.mailbox_poll(mailbox=recipient).acknowledged == 1
    assert events_dispatch()["integrations"] == 1  # message.received consumed once
    (delivery,) = Delivery.objects.all()
    assert delivery_run(delivery_id=delivery.pk) == "delivered"
    (written,) = [p for p in target.rglob("results.txt")]
    assert written.read_bytes() == data
    assert events_dispatch()["integrations"] == 0
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.sandbox
def test_a_report_route_delivers_a_non_delivery_report_from_mesh(
    sandbox_mailboxes, sandbox, tmp_path
):
    sender, _ = sandbox_mailboxes
    target = tmp_path / "reports"
    target.mkdir()
    route = route_to(sender, directory(target), pattern="*")
    route.message_type = "REPORT"
    route.save(update_fields=["message_type"])
    message = queue(sender, b"never collected")
    outbox.message_send(message_id=message.pk)
    message.refresh_from_db()
    sandbox.report_not_collected(message)
    assert inbox.mailbox_poll(mailbox=sender).reports == 1
    assert events_dispatch()["integrations"] == 1  # message.ndr, for the report
    (delivery,) = Delivery.objects.all()
    assert delivery.message.message_type == "REPORT"
    assert delivery.message.linked_message == message
    assert delivery_run(delivery_id=delivery.pk) == "delivered"
    (sidecar,) = target.rglob("*.json")
    about = json.loads(sidecar.read_text())
    assert about["message_type"] == "REPORT" and about["mesh_status_code"] == "14"
    assert about["linked_mesh_message_id"] == message.mesh_message_id
