"""TLS for MESH: one explicit ssl.SSLContext, never changed by the environment.

requests on its own lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a client-wide
``verify=False``, and adds its own bundle to a pinned CA file. Here the session is built with
``trust_env = False`` and an adapter that hands urllib3 our context and nothing else:

* ``verify=True``: the certifi bundle requests would use by default (MESH live needs the NHS CA:
  pass its bundle path instead);
* ``verify="/path/ca.pem"`` (file or directory): exactly that CA, nothing added;
* ``verify=b"-----BEGIN CERTIFICATE..."``: exactly the CA certificates in those PEM bytes;
* ``verify=False``: no verification at all (sandbox use only).

TLS 1.2 is the minimum, hostnames are checked against the certificate's SANs, and the client
certificate (mutual TLS) is loaded up front so a bad file fails before any request.

The client certificate and key are either two file paths or two ``bytes`` of PEM. PEM bytes
never touch a disk: Python's ssl module reads a key only from a path, so on Linux they are handed
to it through an anonymous in-memory file (``memfd_create``) that is closed as soon as the
context has loaded them. Where that does not exist, a private (0700) temporary directory is used
and removed at once, before any connection is made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter

from .errors import MeshCertificateError

CertArg = tuple[str, str] | tuple[bytes, bytes] | None
VerifyArg = bool | str | bytes


def default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return None
    return certifi.where()


def build_ssl_context(verify: VerifyArg = True, cert: CertArg = None) -> ssl.SSLContext:
    """The one context every HTTPS connection of a MeshClient uses."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        _load_trust(context, default_ca_bundle() if verify is True else verify)
    if cert is not None:
        _load_client_cert(context, cert)
    return context


def _load_trust(context: ssl.SSLContext, location: Any) -> None:
    if location is None:
        context.load_default_certs()
        return
    if isinstance(location, bytes | bytearray):
        try:
            context.load_verify_locations(cadata=bytes(location).decode("ascii"))
        except (UnicodeDecodeError, ssl.SSLError, ValueError) as error:
            raise MeshCertificateError(
                f"cannot load the CA bundle given as PEM bytes: {_reason(error)}"
            ) from error
        return
    if not isinstance(location, str | os.PathLike):
        raise MeshCertificateError(
            f"verify must be True, False or a CA bundle path, got {location!r}"
        )
    path = os.fspath(location)
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as error:
        raise MeshCertificateError(
            f"cannot load the CA bundle {path!r}: {_reason(error)}"
        ) from error


def _load_client_cert(context: ssl.SSLContext, cert: Any) -> None:
    if not (isinstance(cert, tuple | list) and len(cert) == 2):
        raise MeshCertificateError(
            "cert must be a (cert_path, key_path) pair or a (cert_pem, key_pem) pair of bytes"
        )
    if all(isinstance(part, bytes | bytearray) for part in cert):
        _load_client_cert_from_memory(context, bytes(cert[0]), bytes(cert[1]))
        return
    if any(isinstance(part, bytes | bytearray) for part in cert):
        raise MeshCertificateError("cert must be two paths or two PEM bytes, not one of each")
    cert_path, key_path = (os.fspath(part) for part in cert)
    for label, path in (("client certificate", cert_path), ("client key", key_path)):
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise MeshCertificateError(
                f"the {label} file {path!r} does not exist or cannot be read"
            )
    try:
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
    except (OSError, ssl.SSLError) as error:
        raise MeshCertificateError(
            f"cannot use the client certificate {cert_path!r} with key {key_path!r}: {_reason(error)} "
            "(is it PEM, unencrypted, and does the key match the certificate?)"
        ) from error


def _load_client_cert_from_memory(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    for label, pem in (("client certificate", cert_pem), ("client key", key_pem)):
        if b"-----BEGIN" not in pem:
            raise MeshCertificateError(f"the {label} given as bytes is not PEM")
    try:
        with _memory_file(cert_pem) as cert_path, _memory_file(key_pem) as key_path:
            context.load_cert_chain(certfile=cert_path, keyfile=key_path)
    except (OSError, ssl.SSLError) as error:
        raise MeshCertificateError(
            f"cannot use the client certificate given as PEM bytes: {_reason(error)} "
            "(is it PEM, unencrypted, and does the key match the certificate?)"
        ) from error


@contextlib.contextmanager
def _memory_file(content: bytes) -> Iterator[str]:
    """A path the ssl module can read ``content`` from, on no disk where the OS allows it."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("meshcore-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, content)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="meshcore-pem-")  # mode 0700
    try:
        path = os.path.join(directory, "pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _reason(error: Exception) -> str:
    return getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)


class PinnedTLSAdapter(HTTPAdapter):
    """An HTTPAdapter whose TLS settings come only from the given SSLContext.

    requests normally copies ``verify`` and ``cert`` (and environment CA bundles) into every
    connection pool; ``cert_verify`` and the pool key attributes are overridden so urllib3 sees
    our context alone and nothing can be added to its trust store behind our back.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        self._cert_reqs = (
            "CERT_NONE" if ssl_context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"
        )
        # max_retries=0: retries happen above, in MeshClient, so every attempt gets a new token.
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ssl_context
        kwargs["cert_reqs"] = self._cert_reqs
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> Any:
        host_params, _ignored = super().build_connection_pool_key_attributes(request, verify, cert)
        return host_params, {"ssl_context": self._ssl_context, "cert_reqs": self._cert_reqs}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Deliberately nothing: the trust store and client certificate are in our SSLContext."""
