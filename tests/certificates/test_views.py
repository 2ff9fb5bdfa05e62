from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditRecord
from portal.certificates.models import Certificate
from portal.certificates.services import certificate_create_csr
from tests.accounts.access import (
    ADMIN_ONLY,
    ALL_ROLES,
    PERSONAS,
    as_persona,
    assert_access,
    assert_no_inline_code,
    make_certificate,
)
from tests.factories import make_mailbox

pytestmark = pytest.mark.django_db
CN = "X26ABC1.X26.api.mesh-client.nhs.uk"


@pytest.fixture
def mailbox(db):
    return make_mailbox("X26ABC1")


@pytest.fixture
def awaiting(mailbox):
    return certificate_create_csr(mailbox=mailbox)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    certificate: Certificate,
    *,
    cn: str | None = None,
    other_key: bool = False,
    expired: bool = False,
) -> str:
    """Sign a certificate for the CSR's key, as the service desk would (with a throwaway CA)."""
    csr = x509.load_pem_x509_csr(certificate.csr_pem.encode())
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        if other_key
        else csr.public_key()
    )
    now = datetime.now(UTC)
    not_after = now - timedelta(days=1) if expired else now + timedelta(days=365)
    issued = (
        x509.CertificateBuilder()
        .subject_name(_name(cn or certificate.common_name))
        .issuer_name(_name("NeoMesh Test CA"))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(not_after)
        .sign(ca_key, hashes.SHA256())
    )
    return issued.public_bytes(serialization.Encoding.PEM).decode()


CASES = [
    ("list", "get", lambda c: reverse("certificates:list"), {}, ALL_ROLES, 200),
    ("detail", "get", lambda c: reverse("certificates:detail", args=[c.pk]), {}, ALL_ROLES, 200),
    (
        "download_csr",
        "get",
        lambda c: reverse("certificates:download_csr", args=[c.pk]),
        {},
        ALL_ROLES,
        200,
    ),
    (
        "create_csr",
        "get",
        lambda c: reverse("certificates:create_csr", args=[c.mailbox.pk]),
        {},
        ADMIN_ONLY,
        200,
    ),
    (
        "create_csr_post",
        "post",
        lambda c: reverse("certificates:create_csr", args=[c.mailbox.pk]),
        {"confirmed": "yes"},
        ADMIN_ONLY,
        302,
    ),
    (
        "install",
        "post",
        lambda c: reverse("certificates:install", args=[c.pk]),
        {},
        ADMIN_ONLY,
        400,
    ),
    (
        "ticket",
        "post",
        lambda c: reverse("certificates:ticket", args=[c.pk]),
        {"service_desk_ticket": "INC1"},
        ADMIN_ONLY,
        302,
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "method", "url", "data", "allowed", "ok"), CASES, ids=[c[0] for c in CASES]
)
def test_it_checks_access_for_every_persona(
    client, request, awaiting, persona, name, method, url, data, allowed, ok
):
    as_persona(client, request, persona)
    response = getattr(client, method)(url(awaiting), data)
    assert_access(response, persona, allowed, ok)


def test_it_asks_before_generating_and_shows_the_cn(client, admin_user, mailbox):
    client.force_login(admin_user)
    html = client.get(reverse("certificates:create_csr", args=[mailbox.pk])).content.decode()
    assert CN in html and "Generate key and CSR" in html
    assert not Certificate.objects.exists()
    assert_no_inline_code(html)


def test_it_makes_nothing_without_the_confirmation_page(client, admin_user):
    live = make_mailbox("X26LIVE9", environment="live")
    client.force_login(admin_user)
    page = client.get(reverse("mailboxes:detail", args=[live.pk])).content.decode()
    # The mailbox page links to the confirmation page; it has no form that acts at once.
    confirm_url = reverse("certificates:create_csr", args=[live.pk])
    assert f'<a class="button" href="{confirm_url}">Generate key and CSR</a>' in page
    assert f'action="{confirm_url}"' not in page
    response = client.post(confirm_url)  # a bare POST, not from the confirmation page
    assert response.status_code == 200 and not Certificate.objects.exists()
    html = response.content.decode()
    assert "This is a LIVE mailbox." in html and "Generate key and CSR for LIVE" in html


def test_it_generates_a_key_and_csr(client, admin_user, mailbox):
    client.force_login(admin_user)
    response = client.post(
        reverse("certificates:create_csr", args=[mailbox.pk]), {"confirmed": "yes"}
    )
    certificate = Certificate.objects.get()
    assert response["Location"] == reverse("certificates:detail", args=[certificate.pk])
    assert certificate.common_name == CN and certificate.created_by == admin_user
    assert AuditRecord.objects.filter(action="certificate.csr_created").exists()
    html = client.get(response["Location"]).content.decode()
    assert "BEGIN CERTIFICATE REQUEST" in html
    assert "PRIVATE KEY" not in html and certificate.private_key not in html
    assert_no_inline_code(html)


def test_it_downloads_the_csr_as_text_and_audits_it(client, auditor_user, awaiting):
    client.force_login(auditor_user)
    response = client.get(reverse("certificates:download_csr", args=[awaiting.pk]))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{CN}.csr"'
    assert response.content.decode() == awaiting.csr_pem
    assert b"PRIVATE KEY" not in response.content
    assert AuditRecord.objects.filter(
        action="certificate.csr_downloaded", actor=auditor_user
    ).exists()


def test_it_installs_an_uploaded_certificate(client, admin_user, awaiting):
    client.force_login(admin_user)
    pem = SimpleUploadedFile("issued.pem", issue(awaiting).encode())
    response = client.post(reverse("certificates:install", args=[awaiting.pk]), {"pem_file": pem})
    assert response.status_code == 302
    awaiting.refresh_from_db()
    assert awaiting.status == Certificate.Status.ACTIVE
    assert awaiting.mailbox.active_certificate() == awaiting
    html = client.get(response["Location"]).content.decode()
    assert "Certificate installed" in html and "364 days left" in html


def test_it_installs_a_pasted_certificate(client, admin_user, awaiting):
    client.force_login(admin_user)
    response = client.post(
        reverse("certificates:install", args=[awaiting.pk]), {"pem_text": issue(awaiting)}
    )
    assert response.status_code == 302
    awaiting.refresh_from_db()
    assert awaiting.status == Certificate.Status.ACTIVE


@pytest.mark.parametrize(
    ("make_data", "message"),
    [
        (
            lambda c: {"pem_text": issue(c, other_key=True)},
            "does not match this CSR&#x27;s private key",
        ),
        (
            lambda c: {"pem_text": issue(c, cn="X26ABC9.X26.api.mesh-client.nhs.uk")},
            "but this CSR asked for",
        ),
        (lambda c: {"pem_text": issue(c, expired=True)}, "The certificate expired on"),
        (lambda c: {"pem_text": "hello"}, "The certificate cannot be read"),
        (lambda c: {}, "Upload the issued certificate, or paste it below."),
        (
            lambda c: {"pem_text": issue(c), "pem_file": SimpleUploadedFile("c.pem", b"x")},
            "not both",
        ),
        (
            lambda c: {"pem_file": SimpleUploadedFile("c.der", b"\xff\xfe\x00\x81")},
            "The file is not text",
        ),
    ],
)
def test_it_refuses_a_certificate_with_a_clear_reason(
    client, admin_user, awaiting, make_data, message
):
    client.force_login(admin_user)
    response = client.post(reverse("certificates:install", args=[awaiting.pk]), make_data(awaiting))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "There is a problem" in html
    awaiting.refresh_from_db()
    assert awaiting.status == Certificate.Status.AWAITING


def test_it_asks_for_the_service_desk_ticket_once(client, admin_user, awaiting):
    client.force_login(admin_user)
    html = client.get(reverse("certificates:detail", args=[awaiting.pk])).content.decode()
    assert "Install certificate" in html  # the install form is on the page...
    asked = html.count('name="service_desk_ticket"') + html.count('name="ticket"')
    assert asked == 1  # ...and the ticket is asked for once, in its own section


def test_it_saves_the_service_desk_ticket(client, admin_user, awaiting):
    client.force_login(admin_user)
    client.post(
        reverse("certificates:ticket", args=[awaiting.pk]), {"service_desk_ticket": "ITOC-777"}
    )
    awaiting.refresh_from_db()
    assert awaiting.service_desk_ticket == "ITOC-777"
    assert awaiting.private_key.startswith("-----BEGIN")  # the deferred key survives the save


@pytest.mark.parametrize(
    ("days", "badge"),
    [
        (200, '<span class="badge status-ok">200 days left</span>'),
        (30, '<span class="badge status-attention">30 days left</span>'),
        (-3, '<span class="badge status-failed">Expired</span>'),
    ],
)
def test_it_lists_certificates_with_days_left(client, lead_user, mailbox, days, badge):
    status = Certificate.Status.EXPIRED if days < 0 else Certificate.Status.ACTIVE
    make_certificate(
        mailbox, status=status, not_after=timezone.now() + timedelta(days=days, hours=1)
    )
    client.force_login(lead_user)
    html = client.get(reverse("certificates:list")).content.decode()
    assert badge in html
    assert "SECRETKEYMATERIAL" not in html
    assert "Generate key and CSR" not in html  # leads cannot make CSRs
    assert_no_inline_code(html)


def test_it_filters_certificates_expiring_within_90_days(client, admin_user, mailbox):
    soon = make_certificate(
        mailbox, status=Certificate.Status.ACTIVE, not_after=timezone.now() + timedelta(days=10)
    )
    other = make_mailbox("X26ABC2")
    make_certificate(
        other, status=Certificate.Status.ACTIVE, not_after=timezone.now() + timedelta(days=300)
    )
    client.force_login(admin_user)
    response = client.get(reverse("certificates:list"), {"expiring": "on"})
    assert list(response.context["page"]) == [soon]


def test_it_never_shows_the_private_key_anywhere(client, superuser, mailbox):
    certificate = make_certificate(mailbox)
    client.force_login(superuser)
    for url in (
        reverse("certificates:detail", args=[certificate.pk]),
        reverse("certificates:list"),
        reverse("admin:certificates_certificate_change", args=[certificate.pk]),
        reverse("admin:certificates_certificate_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert b"SECRETKEYMATERIAL" not in response.content
