"""The daily audit chain verification raises one event when the chain breaks, one when it is whole."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.audit.services import Actor, record
from portal.audit.tasks import verify_chain
from portal.events.models import Event

pytestmark = pytest.mark.django_db


def test_it_raises_one_event_while_the_chain_is_broken_and_one_when_it_is_whole():
    entries = [record(action="test.entry", actor=Actor.system(), detail=str(i)) for i in range(3)]
    verify_chain()
    assert not Event.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditrecord SET detail = %s WHERE seq = %s", ["forged", entries[1].seq]
        )
    verify_chain()
    verify_chain()
    broken = Event.objects.get()
    assert broken.kind == "audit.chain_broken" and broken.severity == "critical"
    assert f"record #{entries[1].seq} was altered" in broken.summary
    assert broken.data["first_broken_seq"] == entries[1].seq
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditrecord SET detail = %s WHERE seq = %s", ["1", entries[1].seq]
        )
    verify_chain()
    verify_chain()
    assert list(Event.objects.order_by("id").values_list("kind", "resolves")) == [
        ("audit.chain_broken", False),
        ("audit.chain_intact", True),
    ]
