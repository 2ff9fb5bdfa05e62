"""Actors decided at the edge: who a record names, for each kind of caller."""

from __future__ import annotations

import os

import pytest
from django.test import RequestFactory

from portal.audit.services import Actor, record

pytestmark = pytest.mark.django_db


def test_it_names_the_signed_in_person_and_the_trusted_address(admin_user):
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.7")
    request.user = admin_user
    entry = record(action="test.event", actor=Actor.person(request))
    assert (entry.actor, entry.actor_label, entry.actor_kind) == (
        admin_user,
        admin_user.username,
        "person",
    )
    assert entry.ip_address == "192.0.2.7"


def test_it_labels_a_worker_with_the_configured_worker_name(settings):
    settings.WORKER_NAME = "node-7"
    entry = record(action="test.event", actor=Actor.worker())
    assert (entry.actor_label, entry.actor_kind) == (f"worker node-7:{os.getpid()}", "worker")


def test_it_records_an_api_token_as_its_own_kind():
    entry = record(
        action="test.event", actor=Actor.token(label="token ci-bot", ip="203.0.113.4", token_id=3)
    )
    assert (entry.actor, entry.actor_label, entry.actor_kind, entry.ip_address) == (
        None,
        "token ci-bot",
        "token",
        "203.0.113.4",
    )


def test_it_names_the_operator_of_a_command_and_nobody_for_the_system():
    command = record(action="test.event", actor=Actor.command())
    assert command.actor_label.startswith("command line (") and command.actor_kind == "person"
    assert record(action="test.event", actor=Actor.system()).actor_kind == "system"
