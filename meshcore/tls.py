"""TLS for MESH: one explicit ssl.SSLContext, never changed by the environment.

requests on its own lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a client-wide
``verify=False``, and adds its own bundle to a pinned CA file. Here the session is built with
``trust_env = False`` and an adapter that hands urllib3 our context and nothing else:

* ``verify=True``: the certifi bundle requests would use by default (MESH live needs the NHS CA:
  pass its bundle path instead);
* ``verify="/path/ca.pem"`` (file or directory): exactly that CA, nothing added;
* ``verify=False``: no verification at all (sandbox use only).

TLS 1.2 is the minimum, hostnames are checked against the certificate's SANs, and the client
certificate (mutual TLS) is loaded up front so a bad file fails before any request.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from requests.adapters import HTTPAdapter

from .errors import MeshCertificateError

CertArg = tuple[str, str] | None
VerifyArg = bool | str


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
        raise MeshCertificateError("cert must be a (cert_path, key_path) pair")
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
