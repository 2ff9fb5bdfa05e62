"""meshcore.certificates: CSRs with exactly the MESH CN, inspection, key matching, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from meshcore import MeshCertificateError, MeshValidationError
from meshcore.certificates import (
    certificate_matches_key,
    csr_common_name,
    expected_cn,
    generate_csr,
    inspect_certificate,
    load_private_key,
    validate_cn,
)
from tests.meshcore.pki import issue, make_ca


def test_it_makes_a_csr_whose_subject_is_exactly_the_mesh_cn():
    key_pem, csr_pem = generate_csr("x26abc1", "x26")
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=X26ABC1.X26.api.mesh-client.nhs.uk"
    assert len(csr.subject) == 1
    assert csr.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS) == []
    assert len(csr.extensions) == 0, "no SAN or any other extension"
    assert csr_common_name(csr_pem) == "X26ABC1.X26.api.mesh-client.nhs.uk"
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() == csr.public_key().public_numbers()


def test_it_validates_common_names():
    assert expected_cn("X26ABC1", "X26") == "X26ABC1.X26.api.mesh-client.nhs.uk"
    assert validate_cn("X26ABC1.X26.api.mesh-client.nhs.uk") == ("X26ABC1", "X26")
    for bad in [
        "X26ABC1.api.mesh-client.nhs.uk",
        "x26abc1.x26.api.mesh-client.nhs.uk",
        "X26ABC1.X26.nhs.uk",
        "",
    ]:
        with pytest.raises(MeshValidationError, match="MAILBOXID.ODSCODE"):
            validate_cn(bad)
    with pytest.raises(MeshValidationError, match="ODS code"):
        expected_cn("X26ABC1", "X 26")
    with pytest.raises(MeshValidationError, match="key_size"):
        generate_csr("X26ABC1", "X26", key_size=1024)


def test_it_inspects_a_certificate_and_its_chain():
    root = make_ca("Test Root")
    leaf = issue(
        root,
        "X26ABC1.X26.api.mesh-client.nhs.uk",
        dns=("localhost",),
        ips=("127.0.0.1",),
        client=True,
    )
    info = inspect_certificate(leaf.cert_pem + root.cert_pem)
    assert info.common_name == "X26ABC1.X26.api.mesh-client.nhs.uk"
    assert info.subject == "CN=X26ABC1.X26.api.mesh-client.nhs.uk"
    assert info.issuer == "CN=Test Root"
    assert info.serial == format(leaf.certificate.serial_number, "X")
    assert info.sans == ("DNS:localhost", "IP:127.0.0.1")
    assert info.not_after.tzinfo is UTC and info.not_before < datetime.now(UTC) < info.not_after
    assert 28 <= info.days_left() <= 30 and info.is_valid_at()
    assert len(info.fingerprint_sha256) == 64
    assert (info.key_type, info.key_size, info.is_ca) == ("RSA", 2048, False)
    assert [(item.common_name, item.is_ca) for item in info.chain] == [("Test Root", True)]


def test_it_checks_a_certificate_against_its_key():
    root = make_ca()
    leaf = issue(root, "X26ABC1.X26.api.mesh-client.nhs.uk", client=True)
    other = issue(root, "X26ABC2.X26.api.mesh-client.nhs.uk", client=True)
    assert certificate_matches_key(leaf.cert_pem, leaf.key_pem)
    assert not certificate_matches_key(leaf.cert_pem, other.key_pem)
    key_pem, _csr = generate_csr("X26ABC1", "X26")
    assert not certificate_matches_key(leaf.cert_pem + root.cert_pem, key_pem)


def test_it_gives_clear_errors_for_bad_pem():
    with pytest.raises(MeshCertificateError, match="not a PEM certificate"):
        inspect_certificate(b"-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    with pytest.raises(MeshCertificateError, match="not a PEM certificate"):
        inspect_certificate(b"hello")
    with pytest.raises(MeshCertificateError, match="private key"):
        load_private_key(b"not a key")
    with pytest.raises(MeshCertificateError, match="signing request"):
        csr_common_name(b"garbage")
    with pytest.raises(MeshCertificateError, match="bytes"):
        inspect_certificate(12345)


def test_it_loads_encrypted_keys_and_explains_a_missing_password():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    assert load_private_key(encrypted, b"s3cret").key_size == 2048
    with pytest.raises(MeshCertificateError, match="password"):
        load_private_key(encrypted)
    with pytest.raises(MeshCertificateError, match="wrong password"):
        load_private_key(encrypted, b"wrong")
