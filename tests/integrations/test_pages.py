"""The message page shows a received message's deliveries (where it went, or why not)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.integrations.models import Destination, DestinationKind
from portal.integrations.services import deliveries_plan, delivery_run
from tests.factories import make_mailbox

from .helpers import received_message, route_to

pytestmark = pytest.mark.django_db


def test_the_message_page_shows_each_delivery(client, auditor_user, tmp_path):
    mailbox = make_mailbox("X26ABC2")
    (tmp_path / "drop").mkdir()
    good = Destination.objects.create(
        name="Data lake drop",
        kind=DestinationKind.DIRECTORY,
        settings={"path": str(tmp_path / "drop")},
    )
    bad = Destination.objects.create(
        name="Unmounted share",
        kind=DestinationKind.DIRECTORY,
        settings={"path": str(tmp_path / "gone")},
    )
    route_to(mailbox, good, bad)
    message = received_message(mailbox)
    for delivery in deliveries_plan(message=message):
        delivery_run(delivery_id=delivery.pk)
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert "Deliveries" in html
    assert "Data lake drop" in html and "Delivered" in html and str(tmp_path / "drop") in html
    assert "Unmounted share" in html and "Failed, will retry" in html and "does not exist" in html


def test_a_message_without_deliveries_shows_no_deliveries_panel(client, auditor_user):
    message = received_message(make_mailbox("X26ABC2"))
    client.force_login(auditor_user)
    html = client.get(reverse("messaging:detail", args=[message.pk])).content.decode()
    assert 'id="deliveries"' not in html
