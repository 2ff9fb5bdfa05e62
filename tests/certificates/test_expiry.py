"""The daily expiry check, at a fixed moment; and private keys at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from portal.audit.models import AuditRecord
from portal.certificates.models import Certificate
from portal.certificates.services import certificates_check_expiry
from tests.accounts.access import make_certificate
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def active(mailbox_id: str, not_after: datetime) -> Certificate:
    return make_certificate(
        make_mailbox(mailbox_id), status=Certificate.Status.ACTIVE, not_after=not_after
    )


def test_it_marks_expired_certificates_and_counts_the_expiring_ones():
    expired = active("X26ABC1", NOW - timedelta(seconds=1))
    at_the_moment = active("X26ABC2", NOW)
    expiring = active("X26ABC3", NOW + timedelta(days=89))
    healthy = active("X26ABC4", NOW + timedelta(days=120))
    awaiting = make_certificate(make_mailbox("X26ABC5"), not_after=NOW - timedelta(days=1))

    assert certificates_check_expiry(now=NOW) == {"expired": 2, "expiring": 1}
    statuses = dict(Certificate.objects.values_list("pk", "status"))
    assert statuses == {
        expired.pk: "expired",
        at_the_moment.pk: "expired",
        expiring.pk: "active",
        healthy.pk: "active",
        awaiting.pk: "awaiting",
    }
    audited = AuditRecord.objects.filter(action="certificate.expired", actor_kind="worker")
    assert sorted(audited.values_list("object_id", flat=True)) == sorted(
        [str(expired.pk), str(at_the_moment.pk)]
    )
    # The next day's run finds nothing new to expire.
    assert certificates_check_expiry(now=NOW + timedelta(days=1)) == {"expired": 0, "expiring": 1}
    assert audited.count() == 2


def test_it_leaves_a_certificate_valid_until_its_last_moment():
    certificate = active("X26ABC1", NOW + timedelta(seconds=1))
    assert certificates_check_expiry(now=NOW) == {"expired": 0, "expiring": 1}
    certificate.refresh_from_db()
    assert certificate.status == Certificate.Status.ACTIVE


def test_the_private_key_is_stored_as_a_fernet_token(settings):
    certificate = make_certificate(make_mailbox("X26ABC1"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT private_key FROM {Certificate._meta.db_table} WHERE id = %s", [certificate.pk]
        )
        (raw,) = cursor.fetchone()
    assert "PRIVATE KEY" not in raw
    plain = Fernet(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(raw.encode()).decode()
    assert plain == certificate.private_key and "SECRETKEYMATERIAL" in plain


def test_an_expired_certificate_is_still_the_mailboxs_current_one_until_replaced():
    certificate = active("X26ABC1", NOW - timedelta(days=1))
    make_certificate(certificate.mailbox, status=Certificate.Status.SUPERSEDED)
    make_certificate(certificate.mailbox)  # a CSR awaiting its certificate
    certificates_check_expiry(now=NOW)
    current = Certificate.objects.current().filter(mailbox=certificate.mailbox)
    assert list(current) == [certificate]
    assert current.get().status == Certificate.Status.EXPIRED


def test_a_run_that_read_before_another_marked_it_expired_audits_nothing_twice(monkeypatch):
    certificate = active("X26ABC1", NOW - timedelta(seconds=1))
    assert certificates_check_expiry(now=NOW)["expired"] == 1
    # An overlapping run that listed the certificate while it was still active.
    queryset = type(Certificate.objects.all())
    monkeypatch.setattr(queryset, "active", lambda self: self.filter(pk=certificate.pk))
    assert certificates_check_expiry(now=NOW)["expired"] == 0
    assert AuditRecord.objects.filter(action="certificate.expired").count() == 1
