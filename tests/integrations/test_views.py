"""The routes and destinations pages: who may see and change them, the write-only secret, "test
this destination", and replays from the pages (each audited)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.integrations.models import (
    Delivery,
    DeliveryState,
    Destination,
    DestinationKind,
    Route,
)
from tests.factories import make_mailbox, make_organisation

from .helpers import received_message, route_to

pytestmark = pytest.mark.django_db


def directory(path, name="Data lake drop") -> Destination:
    return Destination.objects.create(
        name=name, kind=DestinationKind.DIRECTORY, settings={"path": str(path)}
    )


def dead_letter(mailbox, destination, route) -> Delivery:
    return Delivery.objects.create(
        message=received_message(mailbox),
        destination=destination,
        route=route,
        state=DeliveryState.DEAD_LETTERED,
        attempts=8,
        last_error="The folder does not exist.",
    )


def test_it_lists_routes_and_destinations_with_dead_letters(client, admin_user, tmp_path):
    mailbox = make_mailbox("X26ABC2")
    drop = directory(tmp_path)
    route = route_to(mailbox, drop, name="Pathology to the lake")
    dead_letter(mailbox, drop, route)
    client.force_login(admin_user)
    html = client.get(reverse("integrations:list")).content.decode()
    assert "Pathology to the lake" in html and "Data lake drop" in html
    assert "Replay dead letters" in html and "Test this destination" in html
    assert reverse("integrations:list") in client.get(reverse("dashboard:home")).content.decode()


def test_it_refuses_people_without_the_permissions(client, auditor_user, outsider_user, tmp_path):
    drop = directory(tmp_path)
    client.force_login(outsider_user)
    assert client.get(reverse("integrations:list")).status_code == 403
    client.force_login(auditor_user)
    assert client.get(reverse("integrations:list")).status_code == 200  # auditors read
    for url in (
        reverse("integrations:destination_new"),
        reverse("integrations:destination_edit", args=[drop.pk]),
        reverse("integrations:route_new"),
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("integrations:destination_test", args=[drop.pk])).status_code == 403
    assert not AuditRecord.objects.filter(action="destination.probed").exists()


def test_it_creates_and_edits_a_destination_with_a_write_only_secret(client, admin_user):
    client.force_login(admin_user)
    settings = '{"bucket": "landing", "endpoint_url": "http://127.0.0.1:9"}'
    response = client.post(
        reverse("integrations:destination_new"),
        {
            "name": "Landing bucket",
            "kind": "s3",
            "settings": settings,
            "enabled": "on",
            "new_secret": "s3-secret-key",
        },
    )
    assert response.status_code == 302
    destination = Destination.objects.get(name="Landing bucket")
    assert destination.secret == "s3-secret-key" and destination.secret_changed_at
    page = client.get(reverse("integrations:destination_edit", args=[destination.pk]))
    html = page.content.decode()
    assert "s3-secret-key" not in html and "Secret: set" in html
    created = AuditRecord.objects.filter(action="destination.create").get()
    assert "s3-secret-key" not in str(created.changes)
    client.post(
        reverse("integrations:destination_edit", args=[destination.pk]),
        {"name": "Landing bucket", "kind": "s3", "settings": settings, "new_secret": ""},
    )
    destination.refresh_from_db()
    assert destination.secret == "s3-secret-key" and not destination.enabled


def test_it_shows_a_bad_destination_s_reason_next_to_the_field(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("integrations:destination_new"),
        {"name": "Drop", "kind": "directory", "settings": '{"path": "relative/dir"}'},
    )
    assert response.status_code == 200
    assert "A directory needs an absolute" in response.content.decode()
    assert not Destination.objects.exists()


def test_it_tests_a_destination_from_the_list(client, admin_user, tmp_path):
    good, bad = directory(tmp_path), directory(tmp_path / "missing", name="Unmounted share")
    client.force_login(admin_user)
    page = client.post(reverse("integrations:destination_test", args=[good.pk]), follow=True)
    assert "Data lake drop:" in page.content.decode() and list(tmp_path.iterdir()) == []
    page = client.post(reverse("integrations:destination_test", args=[bad.pk]), follow=True)
    assert "does not exist" in page.content.decode()
    probes = AuditRecord.objects.filter(action="destination.probed", actor=admin_user)
    assert probes.count() == 2


def test_it_creates_a_route_with_ordered_destinations(client, admin_user, tmp_path):
    mailbox = make_mailbox("X26ABC2")
    first, second = directory(tmp_path), directory(tmp_path, name="Archive")
    client.force_login(admin_user)
    form = {
        "name": "Pathology",
        "mailbox": mailbox.pk,
        "workflow_pattern": "PATH_*",
        "message_type": "DATA",
        "enabled": "on",
        "step_0": second.pk,
        "step_1": first.pk,
    }
    assert client.post(reverse("integrations:route_new"), form).status_code == 302
    route = Route.objects.get(name="Pathology")
    assert [s.destination.name for s in route.steps.all()] == ["Archive", "Data lake drop"]
    form.update(step_0=first.pk, step_1="")
    client.post(reverse("integrations:route_edit", args=[route.pk]), form)
    assert [s.destination.name for s in route.steps.all()] == ["Data lake drop"]
    assert AuditRecord.objects.filter(action="routedestination.delete").exists()
    form.update(step_1=first.pk)
    response = client.post(reverse("integrations:route_edit", args=[route.pk]), form)
    assert "only once" in response.content.decode()
    form.update(workflow_pattern="PA*TH", step_1="")
    response = client.post(reverse("integrations:route_edit", args=[route.pk]), form)
    assert "Only a trailing" in response.content.decode()


def test_it_replays_dead_letters_from_the_pages_audited(client, admin_user, tmp_path):
    mailbox = make_mailbox("X26ABC2")
    drop = directory(tmp_path)
    route = route_to(mailbox, drop, name="Pathology")
    first, second = dead_letter(mailbox, drop, route), dead_letter(mailbox, drop, route)
    client.force_login(admin_user)
    detail = reverse("messaging:detail", args=[first.message_id])
    assert "Replay" in client.get(detail).content.decode()
    response = client.post(reverse("integrations:delivery_replay", args=[first.pk]))
    assert response.status_code == 302 and response["Location"] == detail
    first.refresh_from_db()
    assert first.state == DeliveryState.PENDING and first.attempts == 0
    client.post(reverse("integrations:route_replay", args=[route.pk]))
    second.refresh_from_db()
    assert second.state == DeliveryState.PENDING
    assert AuditRecord.objects.filter(action="delivery.replayed", actor=admin_user).count() == 1
    replayed = AuditRecord.objects.get(action="route.dead_letters_replayed", actor=admin_user)
    assert "Replayed 1 " in replayed.detail


def test_the_dashboard_counts_dead_letters_per_mailbox(client, admin_user, tmp_path):
    mailbox = make_mailbox("X26ABC2")
    make_mailbox("X26ABC3")
    drop = directory(tmp_path)
    route = route_to(mailbox, drop)
    dead_letter(mailbox, drop, route), dead_letter(mailbox, drop, route)
    client.force_login(admin_user)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "2 deliveries onwards dead-lettered" in html
    assert html.count("deliveries onwards dead-lettered") == 1


def test_routes_out_of_a_person_s_reach_are_neither_listed_nor_replayed(client, tmp_path):
    from portal.accounts.roles import MAILBOX_ADMIN
    from tests.factories import make_user

    ours, theirs = (
        make_mailbox("X26ABC2"),
        make_mailbox("Y26ABC3", organisation=make_organisation(name="Other", ods_code="Y26")),
    )
    drop = directory(tmp_path)
    hidden = route_to(theirs, drop, name="Their route")
    delivery = dead_letter(theirs, drop, hidden)
    person = make_user(MAILBOX_ADMIN, organisations=[ours.organisation])
    client.force_login(person)
    assert "Their route" not in client.get(reverse("integrations:list")).content.decode()
    assert client.get(reverse("integrations:route_edit", args=[hidden.pk])).status_code == 404
    assert client.post(reverse("integrations:route_replay", args=[hidden.pk])).status_code == 404
    replay = client.post(reverse("integrations:delivery_replay", args=[delivery.pk]))
    assert replay.status_code == 404
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DEAD_LETTERED
