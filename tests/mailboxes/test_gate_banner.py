from __future__ import annotations

import pytest

from tests.onboarding.helpers import make_live_mailbox

pytestmark = pytest.mark.django_db


def test_it_says_why_a_live_mailbox_is_not_transferring(client, admin_user):
    mailbox = make_live_mailbox()
    client.force_login(admin_user)
    page = client.get(f"/mailboxes/{mailbox.pk}/").content.decode()
    assert "Not transferring" in page
    assert f"/onboarding/gate/{mailbox.pk}/" in page


def test_it_says_nothing_for_a_sandbox_mailbox_that_transfers(client, admin_user):
    from tests.factories import make_mailbox

    mailbox = make_mailbox("X26ABC1")
    client.force_login(admin_user)
    assert "Not transferring" not in client.get(f"/mailboxes/{mailbox.pk}/").content.decode()
