"""Reach: the one place deciding which organisations and mailboxes a person or token sees."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from portal.accounts import reach
from portal.accounts.models import Membership
from portal.api.auth import TokenUser
from portal.api.models import ApiGrant, ApiToken, Scope
from portal.mailboxes.models import Mailbox
from tests.factories import make_mailbox, make_organisation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a, b = make_organisation(name="A", ods_code="A1"), make_organisation(name="B", ods_code="B1")
    return {
        "a": a,
        "b": b,
        "a1": make_mailbox("A1MB001", organisation=a),
        "a2": make_mailbox("A1MB002", organisation=a),
        "b1": make_mailbox("B1MB001", organisation=b),
    }


def ids(mailboxes) -> set[str]:
    return set(mailboxes.values_list("mailbox_id", flat=True))


def test_it_gives_a_whole_membership_every_mailbox_of_its_organisation_only(world):
    user = make_user(organisations=[world["a"]])
    assert ids(reach.mailboxes_for(user)) == {"A1MB001", "A1MB002"}
    make_mailbox("A1MB003", organisation=world["a"])  # later mailboxes are in reach too
    assert ids(reach.mailboxes_for(user)) == {"A1MB001", "A1MB002", "A1MB003"}
    assert list(reach.organisations_for(user)) == [world["a"]]
    assert not reach.sees_everything(user)


def test_it_limits_a_membership_to_the_mailboxes_it_lists(world):
    user = make_user(organisations=[(world["a"], [world["a1"]]), world["b"]])
    assert ids(reach.mailboxes_for(user)) == {"A1MB001", "B1MB001"}
    assert set(reach.organisations_for(user)) == {world["a"], world["b"]}
    assert list(reach.whole_organisations_for(user)) == [world["b"]]


def test_it_ignores_a_listed_mailbox_of_another_organisation(world):
    user = make_user(organisations=[(world["a"], [world["a1"]])])
    Membership.objects.get(user=user).mailboxes.add(world["b1"])  # past the form's check
    assert ids(reach.mailboxes_for(user)) == {"A1MB001"}
    with pytest.raises(ValidationError, match="B1MB001"):
        Membership.objects.get(user=user).check_mailboxes([world["a1"], world["b1"]])


def test_it_gives_superusers_and_every_organisation_staff_everything(world):
    assert reach.sees_everything(make_user(superuser=True, organisations=[]))
    staff = make_user()  # the test factory's default: every organisation
    assert reach.sees_everything(staff)
    assert ids(reach.mailboxes_for(staff)) == {"A1MB001", "A1MB002", "B1MB001"}
    qs = Mailbox.objects.all()
    assert reach.within_reach(qs, staff, mailbox="pk") is qs


def test_it_gives_nobody_without_reach_anything(world):
    for user in (make_user(organisations=[]), AnonymousUser(), None):
        assert not reach.mailboxes_for(user).exists()
        assert not reach.organisations_for(user).exists()
    inactive = make_user(organisations=[world["a"]], is_active=False)
    assert not reach.mailboxes_for(inactive).exists()
    inactive_super = make_user(superuser=True, is_active=False)
    assert not reach.sees_everything(inactive_super)


def test_it_narrows_rows_by_their_path_to_a_mailbox_or_organisation(world):
    user = make_user(organisations=[(world["a"], [world["a2"]])])
    workflows = reach.within_reach(world["a1"].workflows.model.objects.all(), user)
    assert {w.mailbox.mailbox_id for w in workflows} == {"A1MB002"}
    orgs = reach.within_organisations(Mailbox.objects.all(), user)
    assert ids(orgs) == {"A1MB001", "A1MB002"}
    for pk in (world["a1"].pk, "not-a-number"):
        with pytest.raises(Http404):
            reach.get_within_reach(reach.mailboxes_for(user), pk=pk)
    assert reach.get_within_reach(reach.mailboxes_for(user), pk=world["a2"].pk) == world["a2"]


def make_token(owner, scope, mailboxes) -> ApiToken:
    token = ApiToken.objects.create(
        name="t",
        owner=owner,
        key_id=f"k{owner.pk}{scope[:3]}",
        secret_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=1),
    )
    ApiGrant.objects.create(token=token, scope=scope).mailboxes.set(mailboxes)
    return token


def test_it_gives_a_token_its_grants_within_its_owners_reach(world):
    owner = make_user(organisations=[world["a"]])
    token = make_token(owner, Scope.MESSAGES_READ, [world["a1"], world["b1"]])
    assert ids(reach.mailboxes_for_token(token)) == {"A1MB001"}
    assert ids(reach.mailboxes_for_token(token, scope=Scope.MESSAGES_SEND)) == set()
    caller = TokenUser(token)
    assert ids(reach.mailboxes_for(caller)) == {"A1MB001"}
    assert not reach.sees_everything(caller)
    assert list(reach.organisations_for(caller)) == [world["a"]]
    owner.is_active = False
    owner.save()
    token.refresh_from_db()
    assert not reach.mailboxes_for_token(token).exists()


def test_it_gives_a_staff_owners_token_only_its_grants(world):
    token = make_token(make_user(), Scope.MESSAGES_READ, [world["b1"]])
    assert ids(reach.mailboxes_for(TokenUser(token))) == {"B1MB001"}


def test_its_migration_keeps_existing_people_seeing_everything(world):
    """Upgrading: people (active, not superusers) who existed before reach keep every organisation."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("portal.accounts.migrations.0002_existing_people_see_everything")
    before = make_user(organisations=[])
    gone = make_user(organisations=[], is_active=False)
    migration.grant(apps, None)
    assert reach.sees_everything(type(before).objects.get(pk=before.pk))
    assert not type(gone).objects.get(pk=gone.pk).user_permissions.exists()
    migration.revoke(apps, None)
    assert not reach.sees_everything(type(before).objects.get(pk=before.pk))


def test_its_forms_offer_and_accept_only_choices_within_reach(world):
    from portal.messaging.forms import SendForm

    user = make_user(organisations=[(world["a"], [world["a1"]])])
    form = SendForm(user=user)
    assert ids(form.fields["mailbox"].queryset) == {"A1MB001"}
    assert [group for group, _ in form.fields["workflow_id"].choices[1:]] == ["A1MB001"]
    posted = SendForm({"mailbox": "B1MB001", "recipient": "X26ABC2"}, user=user)
    assert not posted.is_valid() and "mailbox" in posted.errors


def test_its_plans_follow_their_mailbox_or_a_whole_organisation(world):
    from portal.onboarding.models import Plan

    limited = make_user(organisations=[(world["a"], [world["a1"]])])
    whole = make_user(organisations=[world["a"]])
    kwargs = {"organisation": world["a"], "template_key": "t", "template_version": 1}
    mine = Plan.objects.create(title="mine", target_mailbox=world["a1"], **kwargs)
    unnamed = Plan.objects.create(title="unnamed", environment="integration", **kwargs)
    assert list(Plan.objects.within_reach(limited)) == [mine]
    assert set(Plan.objects.within_reach(whole)) == {mine, unnamed}


def test_whoever_adds_an_organisation_without_seeing_everything_belongs_to_it(client, world):
    from django.urls import reverse

    from portal.accounts.roles import MAILBOX_ADMIN

    person = make_user(MAILBOX_ADMIN, organisations=[world["a"]])
    client.force_login(person)
    answer = client.post(
        reverse("mailboxes:organisation_create"), {"name": "Charlie", "ods_code": "CHARLIE"}
    )
    assert answer.status_code == 302
    assert {o.ods_code for o in reach.organisations_for(person)} == {"A1", "CHARLIE"}
    assert not reach.organisations_for(make_user(organisations=[])).exists()


def test_its_auditors_read_the_records_of_their_reach(world):
    from portal.accounts.reach import Reach
    from portal.audit.models import AuditRecord
    from portal.audit.services import Actor, record
    from portal.onboarding.models import GateOverride

    ours = GateOverride.objects.create(mailbox=world["a1"], reason="A reason long enough here")
    theirs = GateOverride.objects.create(mailbox=world["b1"], reason="A reason long enough here")
    for override in (ours, theirs):
        record(actor=Actor.system("test"), action="onboarding.gate_overridden", obj=override)
    record(actor=Actor.system("test"), action="audit.verification_requested")
    auditor = make_user(organisations=[world["a"]])
    seen = AuditRecord.objects.within(Reach(auditor)).filter(action__startswith="onboarding")
    assert [r.object_id for r in seen] == [str(ours.pk)]
    assert not AuditRecord.objects.within(Reach(auditor)).filter(object_type="").exists()
    assert AuditRecord.objects.within(Reach(make_user())).filter(object_type="").exists()


def test_its_auditors_read_records_of_busy_objects_by_the_mailbox_each_was_sealed_with(world):
    """Messages, deliveries, failures and alerts are read by the mailbox on their records (no
    join to millions of object ids), with a limited membership's mailboxes only."""
    from portal.accounts.reach import Reach
    from portal.alerts.models import Alert, Severity
    from portal.audit.models import AuditRecord
    from portal.audit.services import Actor, record
    from portal.integrations.models import Delivery, Destination
    from tests.accounts.access import make_message

    destination = Destination.objects.create(name="Drop", kind="directory", settings={"path": "/x"})
    system = Actor.system("test")
    for mailbox in ("a1", "a2", "b1"):
        message = make_message(world[mailbox], subject=mailbox)
        delivery = Delivery.objects.create(message=message, destination=destination)
        alert = Alert.objects.create(
            kind="test", severity=Severity.WARNING, summary=mailbox, mailbox_id=world[mailbox].pk
        )
        for obj in (message, Delivery.objects.get(pk=delivery.pk), alert):
            entry = record(actor=system, action="test.busy", obj=obj)
            assert entry.mailbox_pk == world[mailbox].pk
    record(
        actor=system,
        action="test.busy",
        obj=Alert.objects.create(kind="test", severity=Severity.WARNING, summary="the system's"),
    )

    def seen(user) -> list[tuple[str, int]]:
        rows = AuditRecord.objects.within(Reach(user)).filter(action="test.busy")
        return sorted(rows.values_list("object_type", "mailbox_pk"))

    a1, a2 = world["a1"].pk, world["a2"].pk
    kinds = ["alerts.alert", "integrations.delivery", "messaging.message"]
    whole = make_user(organisations=[world["a"]])
    assert seen(whole) == sorted((kind, pk) for kind in kinds for pk in (a1, a2))
    limited = make_user(organisations=[(world["a"], [world["a2"]])])
    assert seen(limited) == [(kind, a2) for kind in kinds]
    assert seen(make_user(organisations=[])) == []
    staff = AuditRecord.objects.within(Reach(make_user())).filter(action="test.busy")
    assert staff.count() == 10  # every mailbox's, and the system's alert

    # Whoever holds every mailbox has the terms checked record by record (CASE): the same records.
    both = make_user(organisations=[world["a"], world["b"]])
    assert Reach(both).holds_every_mailbox and not Reach(whole).holds_every_mailbox
    assert len(seen(both)) == 9  # the system's alert stays hidden
    walked = Reach(whole)
    walked.holds_every_mailbox = True  # the CASE form, for a reach it would not be chosen for
    rows = AuditRecord.objects.within(walked).filter(action="test.busy")
    assert "CASE" in str(rows.query).upper()
    assert sorted(rows.values_list("object_type", "mailbox_pk")) == seen(whole)
    assert "CASE" not in str(AuditRecord.objects.within(Reach(whole)).query).upper()


def test_its_migration_gives_records_sealed_before_it_their_mailbox(world):
    from django.db import connection

    from portal.audit.backfill import fill_record_mailboxes
    from portal.audit.models import AuditRecord
    from portal.audit.services import Actor, record
    from portal.messaging.models import Message
    from tests.accounts.access import make_message

    message = make_message(world["b1"])
    entry = record(actor=Actor.system("test"), action="test.old", obj=message)
    gone = record(actor=Actor.system("test"), action="test.old", obj=make_message(world["a1"]))
    with connection.cursor() as cursor:  # as sealed before the column: none
        cursor.execute("UPDATE audit_auditrecord SET mailbox_pk = NULL WHERE action = 'test.old'")
    Message.objects.filter(pk=int(gone.object_id)).delete()
    fill_record_mailboxes(
        SimpleNamespace(connection=connection),  # what RunPython's schema editor offers
        "messaging.message",
        "SELECT mailbox_id FROM messaging_message WHERE id = {id}",
    )
    filled = dict(AuditRecord.objects.filter(action="test.old").values_list("seq", "mailbox_pk"))
    assert filled == {entry.seq: world["b1"].pk, gone.seq: None}


def test_its_auditors_read_the_model_changes_of_their_mailboxes(world):
    # Changes django-auditlog writes (no object in hand) carry the mailbox too.
    from portal.accounts.reach import Reach
    from portal.audit.models import AuditRecord

    for name in ("a1", "b1"):
        world[name].name = f"Renamed {name}"
        world[name].save()
    changes = AuditRecord.objects.filter(action="mailbox.update")
    assert set(changes.values_list("mailbox_pk", flat=True)) == {world["a1"].pk, world["b1"].pk}
    auditor = make_user(organisations=[world["a"]])
    seen = changes.filter(pk__in=AuditRecord.objects.within(Reach(auditor)).values("pk"))
    assert [r.object_id for r in seen] == [str(world["a1"].pk)]
