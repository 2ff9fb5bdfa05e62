"""A service's audit record commits with the change it records: no record, no change (issue 10).

`mesh_csr` and a queued send used to write their record after their transaction had committed, so
a failure between the two left a certificate or a queued message nobody was recorded as making.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from portal.certificates.models import Certificate
from portal.lib import payloads
from portal.messaging.models import Message
from tests.factories import make_mailbox
from tests.messaging.helpers import queue

pytestmark = pytest.mark.django_db


class SealBroken(Exception):
    pass


def refuse_to_record(*args, **kwargs):
    raise SealBroken("the audit chain refused the record")


def test_mesh_csr_keeps_no_certificate_when_its_record_fails(monkeypatch):
    mailbox = make_mailbox("X26ABC1")
    monkeypatch.setattr("portal.certificates.services.record", refuse_to_record)
    with pytest.raises(SealBroken):
        call_command("mesh_csr", "X26ABC1")
    assert not Certificate.objects.filter(mailbox=mailbox).exists()


def test_a_send_is_not_queued_when_its_record_fails(monkeypatch):
    mailbox = make_mailbox("X26ABC1")
    stored = set(payloads.store().names())
    monkeypatch.setattr("portal.messaging.services.record", refuse_to_record)
    with pytest.raises(SealBroken):
        queue(mailbox, b"results")
    assert not Message.objects.exists()
    assert set(payloads.store().names()) == stored
