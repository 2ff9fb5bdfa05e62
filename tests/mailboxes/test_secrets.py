"""Mailbox secrets at rest: Fernet tokens in the database, readable across a key rotation."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from portal.lib.crypto import SecretUnreadable
from portal.mailboxes.models import Mailbox
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db
PASSWORD, SHARED_KEY = "a-mailbox-password-1", "a-shared-key-2"


def raw_secrets(mailbox: Mailbox) -> tuple[str, str]:
    """The columns as stored, bypassing the field's decryption."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT password, shared_key FROM {Mailbox._meta.db_table} WHERE id = %s", [mailbox.pk]
        )
        return cursor.fetchone()


def test_the_database_holds_fernet_tokens_not_the_secrets(settings):
    mailbox = make_mailbox("X26ABC1", password=PASSWORD, shared_key=SHARED_KEY)
    raw_password, raw_key = raw_secrets(mailbox)
    assert PASSWORD not in raw_password and SHARED_KEY not in raw_key
    fernet = Fernet(settings.FIELD_ENCRYPTION_KEYS[0])
    assert fernet.decrypt(raw_password.encode()) == PASSWORD.encode()
    assert fernet.decrypt(raw_key.encode()) == SHARED_KEY.encode()
    # Fresh tokens each time: equal secrets do not show as equal columns.
    other = make_mailbox("X26ABC2", password=PASSWORD, shared_key=SHARED_KEY)
    assert raw_secrets(other)[0] != raw_password


def test_secrets_stay_readable_through_a_key_rotation(settings):
    old_key, new_key = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    mailbox = make_mailbox("X26ABC1", password=PASSWORD, shared_key=SHARED_KEY)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]  # the new key first, the old one second
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    assert (mailbox.password, mailbox.shared_key) == (PASSWORD, SHARED_KEY)
    call_command("rotate_encryption_keys", stdout=StringIO())
    raw_password, _ = raw_secrets(mailbox)
    assert Fernet(new_key).decrypt(raw_password.encode()) == PASSWORD.encode()
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(raw_password.encode())

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key removed
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    assert (mailbox.password, mailbox.shared_key) == (PASSWORD, SHARED_KEY)


def test_a_secret_without_its_key_is_refused_clearly(settings):
    mailbox = make_mailbox("X26ABC1", password=PASSWORD, shared_key=SHARED_KEY)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SecretUnreadable, match="missing the key it was encrypted with"):
        Mailbox.objects.get(pk=mailbox.pk)
