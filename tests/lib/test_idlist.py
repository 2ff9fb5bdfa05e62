"""A long id list as one parameter (SQLite here, PostgreSQL in phase 2)."""

from __future__ import annotations

import pytest

from portal.lib.idlist import id_list
from portal.messaging.models import Message
from tests.accounts.access import make_message
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def test_it_filters_by_more_ids_than_a_statement_may_have_parameters():
    mailbox = make_mailbox("X26IDL1")
    kept, other = make_message(mailbox, payload=None), make_message(mailbox, payload=None)
    ids = [kept.pk, *range(other.pk + 1, other.pk + 40_001)]  # past SQLite's 32,766
    found = Message.objects.filter(pk__in=id_list(ids)).order_by("-created_at")
    assert list(found.values_list("pk", flat=True)) == [kept.pk]
    assert Message.objects.filter(pk__in=id_list([])).count() == 0
