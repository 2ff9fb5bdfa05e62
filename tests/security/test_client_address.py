"""The address in the audit trail and the sign-in throttle is the one the server saw.

`X-Forwarded-For` is the client's own text unless our proxies wrote it: it is read only when
TRUSTED_PROXY_COUNT says how many stand in front, and whatever is read is normalised (or dropped)
before it is sealed, so the chain still verifies and the database never refuses it.
"""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from portal.audit.models import AuditRecord
from portal.audit.services import Actor, record
from portal.audit.verify import verify_chain
from portal.lib.http import normalise_ip
from tests.audit.test_everything_audited import mailbox_form
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db


def edit_mailbox(client, user, **headers):
    """A model change captured by django-auditlog; returns the record sealed for it."""
    mailbox = make_mailbox("X26ABC1")
    client.force_login(user)
    response = client.post(
        reverse("mailboxes:edit", args=[mailbox.pk]), mailbox_form({}), **headers
    )
    assert response.status_code == 302
    return AuditRecord.objects.for_object(mailbox).get(action="mailbox.update")


def test_a_spoofed_forwarded_address_is_ignored_without_trusted_proxies(
    client, admin_user, settings
):
    entry = edit_mailbox(client, admin_user, HTTP_X_FORWARDED_FOR="203.0.113.66")
    assert entry.ip_address == "127.0.0.1"
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):  # a lockout is sealed, not each failure
        client.post(
            reverse("accounts:login"),
            {"username": admin_user.username, "password": "wrong"},
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )
    failed = AuditRecord.objects.filter(action="auth.lockout").latest("seq")
    assert failed.ip_address == "127.0.0.1"
    assert AccessAttempt.objects.get().ip_address == "127.0.0.1"
    assert verify_chain().ok


def test_an_upper_case_ipv6_address_is_sealed_as_the_database_keeps_it(
    client, admin_user, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    entry = edit_mailbox(client, admin_user, HTTP_X_FORWARDED_FOR="2001:DB8::1")
    assert AuditRecord.objects.get(pk=entry.pk).ip_address == "2001:db8::1"
    assert verify_chain().ok


def test_an_upper_case_forwarded_ipv6_address_without_proxies_cannot_break_the_chain(
    client, admin_user
):
    edit_mailbox(client, admin_user, HTTP_X_FORWARDED_FOR="2001:DB8::1")
    assert verify_chain().ok


def test_an_invalid_forwarded_address_is_dropped_not_a_server_error(client, admin_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    entry = edit_mailbox(client, admin_user, HTTP_X_FORWARDED_FOR="not-an-ip")
    assert entry.ip_address is None
    assert verify_chain().ok


def test_a_forwarded_port_is_not_taken_from_the_client(client, admin_user):
    entry = edit_mailbox(client, admin_user, HTTP_X_FORWARDED_PORT="-1")
    assert entry.ip_address == "127.0.0.1"


def test_a_long_correlation_id_header_is_not_a_server_error(client, admin_user):
    edit_mailbox(client, admin_user, HTTP_X_CORRELATION_ID="x" * 1000)


def test_behind_trusted_proxies_the_client_is_the_entry_that_many_from_the_right(
    client, admin_user, settings
):
    """Each proxy appends the address it was reached from; the left part is the client's own."""
    settings.TRUSTED_PROXY_COUNT = 2
    forwarded = "203.0.113.66, 198.51.100.23, 10.0.0.2"
    entry = edit_mailbox(client, admin_user, HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.3")
    assert entry.ip_address == "198.51.100.23"


def test_too_few_forwarded_entries_fall_back_to_the_proxy_address(client, admin_user, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    entry = edit_mailbox(
        client, admin_user, HTTP_X_FORWARDED_FOR="198.51.100.23", REMOTE_ADDR="10.0.0.3"
    )
    assert entry.ip_address == "10.0.0.3"


def test_the_sign_in_throttle_counts_the_same_address(client, admin_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):  # a lockout is sealed, not each failure
        client.post(
            reverse("accounts:login"),
            {"username": admin_user.username, "password": "wrong"},
            HTTP_X_FORWARDED_FOR="198.51.100.23",
            REMOTE_ADDR="10.0.0.3",
        )
    assert AccessAttempt.objects.get().ip_address == "198.51.100.23"
    failed = AuditRecord.objects.filter(action="auth.lockout").latest("seq")
    assert failed.ip_address == "198.51.100.23"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:DB8::1]:443", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:8080", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("not-an-ip", None),
        ("192.0.2.300", None),
        ("", None),
        (None, None),
    ],
)
def test_addresses_are_normalised_or_dropped(text, address):
    assert normalise_ip(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "2001:DB8:0:0:1:0:0:1",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "2001:db8::",
        "::",
        "::1",
        "::ffff:192.0.2.1",
        "fe80::1%eth0",
        "192.0.2.1",
    ],
)
def test_a_sealed_address_reads_back_as_it_was_hashed(text):
    """Whatever the database does to an address it stores (PostgreSQL's inet rewrites it)."""
    entry = record(action="test.event", actor=Actor(kind="system", label="tester", ip=text))
    assert AuditRecord.objects.get(pk=entry.pk).ip_address == entry.ip_address
    assert verify_chain().ok
