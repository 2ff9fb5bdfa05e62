"""Keys, CSRs and certificates for MESH client TLS, built on ``cryptography``.

MESH issues one client certificate per mailbox and environment, from a CSR whose subject is
exactly ``CN={MAILBOX_ID}.{ODS_CODE}.api.mesh-client.nhs.uk`` and nothing else (no email, no
SAN). Everything here takes and returns PEM ``bytes``, so the caller decides where keys live
(the portal keeps them encrypted at rest). Bad input raises ``MeshCertificateError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from . import validation
from .errors import MeshCertificateError, MeshValidationError

CN_SUFFIX = ".api.mesh-client.nhs.uk"
_CN_RE = re.compile(
    r"^(?P<mailbox>[A-Z0-9][A-Z0-9_-]{2,31})\.(?P<ods>[A-Z0-9]{3,10})\.api\.mesh-client\.nhs\.uk$"
)


class CommonName(NamedTuple):
    mailbox_id: str
    ods_code: str


@dataclass(frozen=True)
class CertificateInfo:
    """What matters about a certificate; ``chain`` holds the certificates after the leaf."""

    subject: str
    common_name: str | None
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]
    fingerprint_sha256: str
    key_type: str
    key_size: int | None
    is_ca: bool
    chain: tuple[CertificateInfo, ...] = field(default=(), repr=False)

    def days_left(self, now: datetime | None = None) -> int:
        return (self.not_after - (now or datetime.now(UTC))).days

    def is_valid_at(self, when: datetime | None = None) -> bool:
        when = when or datetime.now(UTC)
        return self.not_before <= when <= self.not_after


def expected_cn(mailbox_id: str, ods_code: str) -> str:
    """The CN MESH expects for a mailbox's client certificate."""
    return f"{validation.mailbox_id(mailbox_id)}.{validation.ods_code(ods_code)}{CN_SUFFIX}"


def validate_cn(cn: str) -> CommonName:
    """Check a CN has the MESH shape; returns its mailbox id and ODS code."""
    match = _CN_RE.match(cn.strip()) if isinstance(cn, str) else None
    if not match:
        raise MeshValidationError(
            f"CN {cn!r} is not of the form MAILBOXID.ODSCODE{CN_SUFFIX} "
            f"(e.g. X26ABC1.X26{CN_SUFFIX}; upper case, nothing else)"
        )
    return CommonName(match["mailbox"], match["ods"])


def generate_csr(mailbox_id: str, ods_code: str, key_size: int = 2048) -> tuple[bytes, bytes]:
    """A new RSA key and a CSR for it; returns ``(key_pem, csr_pem)``, the key unencrypted PKCS#8."""
    if key_size not in (2048, 3072, 4096):
        raise MeshValidationError(f"key_size must be 2048, 3072 or 4096, got {key_size!r}")
    common_name = expected_cn(mailbox_id, ods_code)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def csr_common_name(csr_pem: bytes) -> str:
    try:
        csr = x509.load_pem_x509_csr(_as_bytes(csr_pem))
    except ValueError as error:
        raise MeshCertificateError(f"not a PEM certificate signing request: {error}") from error
    return _common_name(csr.subject) or ""


def load_private_key(key_pem: bytes, password: bytes | None = None):  # noqa: ANN201 - key types vary
    """Load a PEM private key, with a clear error for a wrong password or a non-key."""
    try:
        return serialization.load_pem_private_key(_as_bytes(key_pem), password=password)
    except TypeError as error:  # encrypted without a password, or a password for a plain key
        raise MeshCertificateError(f"private key password problem: {error}") from error
    except ValueError as error:
        raise MeshCertificateError(
            f"not a readable PEM private key (or wrong password): {error}"
        ) from error


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order (the leaf first)."""
    try:
        certificates = x509.load_pem_x509_certificates(_as_bytes(pem))
    except ValueError as error:
        raise MeshCertificateError(f"not a PEM certificate: {error}") from error
    if not certificates:
        raise MeshCertificateError("no certificate found in the PEM data")
    return certificates


def inspect_certificate(pem: bytes) -> CertificateInfo:
    """Describe the first (leaf) certificate of a PEM file or chain; the rest go in ``chain``."""
    leaf, *rest = load_certificates(pem)
    return _describe(leaf, tuple(_describe(cert) for cert in rest))


def certificate_matches_key(cert_pem: bytes, key_pem: bytes, password: bytes | None = None) -> bool:
    """True when the (leaf) certificate was issued for this private key."""
    certificate = load_certificates(cert_pem)[0]
    key = load_private_key(key_pem, password)
    return _spki(certificate.public_key()) == _spki(key.public_key())


def _describe(cert: x509.Certificate, chain: tuple[CertificateInfo, ...] = ()) -> CertificateInfo:
    public_key = cert.public_key()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=_common_name(cert.subject),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=_sans(cert),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        key_type=_key_type(public_key),
        key_size=getattr(public_key, "key_size", None),
        is_ca=_is_ca(cert),
        chain=chain,
    )


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names = []
    for item in extension.value:
        if isinstance(item, x509.DNSName):
            names.append(f"DNS:{item.value}")
        elif isinstance(item, x509.IPAddress):
            names.append(f"IP:{item.value}")
        elif isinstance(item, x509.RFC822Name):
            names.append(f"email:{item.value}")
        elif isinstance(item, x509.UniformResourceIdentifier):
            names.append(f"URI:{item.value}")
    return tuple(names)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _key_type(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC-{public_key.curve.name}"
    return type(public_key).__name__


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _as_bytes(pem: bytes | str) -> bytes:
    if isinstance(pem, str):
        return pem.encode("ascii", "replace")
    if not isinstance(pem, bytes | bytearray):
        raise MeshCertificateError(f"PEM data must be bytes, got {type(pem).__name__}")
    return bytes(pem)
