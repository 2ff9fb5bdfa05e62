"""Destination and route forms: secrets write-only, settings checked with a reason."""

from __future__ import annotations

import json

import pytest

from portal.integrations.forms import DestinationForm, RouteForm
from portal.integrations.models import Destination

pytestmark = pytest.mark.django_db


def form(instance=None, **data):
    data.setdefault("name", "lake")
    data.setdefault("kind", "s3")
    data["settings"] = json.dumps(data.get("settings", {"bucket": "landing"}))
    data.setdefault("enabled", "on")
    return DestinationForm(data=data, instance=instance)


def test_the_secret_is_stored_encrypted_never_rendered_and_kept_when_left_blank():
    created = form(new_secret="s3-secret-key")
    assert created.is_valid(), created.errors
    destination = created.save()
    assert Destination.objects.get(pk=destination.pk).secret == "s3-secret-key"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret FROM integrations_destination WHERE id = %s", [destination.pk]
        )
        assert "s3-secret-key" not in cursor.fetchone()[0]  # encrypted at rest
    edit = form(instance=destination, new_secret="")
    assert "s3-secret-key" not in str(edit)  # write-only: never shown back
    assert edit.is_valid(), edit.errors
    edit.save()
    assert Destination.objects.get(pk=destination.pk).secret == "s3-secret-key"


@pytest.mark.parametrize(
    ("kind", "config", "reason"),
    [
        ("directory", {"path": "relative/dir"}, "absolute"),
        ("directory", {"path": "/data", "template": "../{filename}"}, "'..'"),
        ("s3", {}, "bucket"),
        ("webhook", {"url": "ftp://x"}, "http(s)"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(kind, config, reason):
    bad = form(kind=kind, settings=config)
    assert not bad.is_valid()
    assert reason in " ".join(bad.errors["settings"])


def test_a_route_pattern_allows_only_a_trailing_star():
    from tests.factories import make_mailbox

    mailbox = make_mailbox("X26ABC2")
    data = {"name": "r", "mailbox": mailbox.pk, "message_type": "DATA", "enabled": "on"}
    assert RouteForm(data={**data, "workflow_pattern": "PATH_*"}).is_valid()
    assert not RouteForm(data={**data, "workflow_pattern": "PA*TH"}).is_valid()
