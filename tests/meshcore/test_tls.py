"""TLS and mutual TLS against mesh-sandbox served by uvicorn, with a throwaway CA.

Also proves that REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment change nothing: neither
making an untrusted server trusted, nor breaking a pinned CA or ``verify=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from urllib3.exceptions import InsecureRequestWarning

from meshcore import MeshCertificateError, MeshClient, MeshTLSError, MeshTransientError
from tests.meshcore.pki import issue, make_ca
from tests.sandbox import PASSWORD, SHARED_KEY, MeshSandbox

pytestmark = pytest.mark.sandbox


@dataclass
class Pki:
    ca: str
    other_ca: str
    server: tuple[str, str]
    client: tuple[str, str]
    stranger: tuple[str, str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory: Path = tmp_path_factory.mktemp("pki")
    ca, other = make_ca("NeoMesh Test CA"), make_ca("Some Other CA")
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    (directory / "other-ca.pem").write_bytes(other.cert_pem)
    server = issue(ca, "localhost", dns=("localhost",), ips=("127.0.0.1",))
    client = issue(ca, "X26ABC1.X26.api.mesh-client.nhs.uk", client=True)
    stranger = issue(other, "X26ABC1.X26.api.mesh-client.nhs.uk", client=True)
    return Pki(
        ca=str(directory / "ca.pem"),
        other_ca=str(directory / "other-ca.pem"),
        server=server.write(directory, "server"),
        client=client.write(directory, "client"),
        stranger=stranger.write(directory, "stranger"),
    )


@pytest.fixture(scope="module")
def tls_sandbox(pki):
    with MeshSandbox(ssl_args=MeshSandbox.tls_args(*pki.server), scheme="https") as server:
        yield server


@pytest.fixture(scope="module")
def mtls_sandbox(pki):
    args = MeshSandbox.tls_args(*pki.server, ca_certs=pki.ca)
    with MeshSandbox(ssl_args=args, scheme="https") as server:
        yield server


@pytest.fixture
def hostile_environment(monkeypatch, pki):
    """CA bundle variables pointing at the *wrong* CA, as a corporate image might set them."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.other_ca)
    monkeypatch.setenv("CURL_CA_BUNDLE", pki.other_ca)


def _client(url: str, **kwargs) -> MeshClient:
    kwargs.setdefault("max_retries", 0)
    return MeshClient(url, "X26ABC1", PASSWORD, SHARED_KEY, **kwargs)


def test_it_handshakes_over_tls_with_a_pinned_ca(tls_sandbox, pki):
    assert tls_sandbox.url.startswith("https://localhost:")
    with _client(tls_sandbox.url, verify=pki.ca) as client:
        assert client.handshake().mailbox_id == "X26ABC1"
        message_id = client.send("X26ABC1", "TEST_WORKFLOW", b"over tls")
        assert message_id in list(client.iter_inbox())


def test_it_verifies_by_default_and_rejects_an_untrusted_server(tls_sandbox, pki):
    with (
        _client(tls_sandbox.url) as client,
        pytest.raises(MeshTLSError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
    ):
        client.handshake()
    with _client(tls_sandbox.url, verify=pki.other_ca) as client, pytest.raises(MeshTLSError):
        client.handshake()


def test_it_checks_the_hostname(tls_sandbox, pki):
    # "127.1" reaches the same server but is neither DNS:localhost nor IP:127.0.0.1.
    wrong_name = tls_sandbox.url.replace("localhost", "127.1")
    with (
        _client(wrong_name, verify=pki.ca) as client,
        pytest.raises(MeshTLSError, match="[Hh]ostname"),
    ):
        client.handshake()


def test_it_ignores_ca_bundle_environment_variables(
    tls_sandbox, pki, hostile_environment, monkeypatch
):
    # A pinned CA keeps working although the environment names another CA...
    with _client(tls_sandbox.url, verify=pki.ca) as client:
        client.handshake()
    # ...verify=False still means no verification against the self-signed server...
    with _client(tls_sandbox.url, verify=False) as client, pytest.warns(InsecureRequestWarning):
        client.handshake()
    # ...and pointing the environment at the *right* CA does not make verify=True trust it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.ca)
    monkeypatch.setenv("CURL_CA_BUNDLE", pki.ca)
    with _client(tls_sandbox.url) as client, pytest.raises(MeshTLSError):
        client.handshake()


def test_it_pins_exactly_the_given_ca_and_nothing_more(tls_sandbox, pki, monkeypatch):
    # Make the default roots (certifi) trust the server: a pinned bundle must not add them.
    import meshcore.tls

    monkeypatch.setattr(meshcore.tls, "default_ca_bundle", lambda: pki.ca)
    with _client(tls_sandbox.url) as client:
        client.handshake()  # the default roots now trust it...
    with _client(tls_sandbox.url, verify=pki.other_ca) as client, pytest.raises(MeshTLSError):
        client.handshake()  # ...but a pinned CA means that CA and nothing more


def test_it_does_mutual_tls_with_a_client_certificate(mtls_sandbox, pki, hostile_environment):
    with _client(mtls_sandbox.url, verify=pki.ca, cert=pki.client) as client:
        assert client.handshake().mailbox_id == "X26ABC1"
        message_id = client.send("X26ABC2", "TEST_WORKFLOW", b"mutual tls")
        assert client.track(message_id).status == "accepted"


# Under TLS 1.3 the client certificate is checked after the client's handshake completes, and
# uvicorn then just closes the connection (no alert), so the client sees a connection closed
# without an answer. The live MESH hosts answer with a TLS alert (unknown CA): a MeshTLSError.
# Either way the handshake fails, and the error says what to check.


@pytest.mark.parametrize("cert", [None, "stranger"], ids=["no-client-cert", "cert-from-another-ca"])
def test_it_fails_mutual_tls_without_an_accepted_client_certificate(mtls_sandbox, pki, cert):
    client_cert = pki.stranger if cert else None
    with _client(mtls_sandbox.url, verify=pki.ca, cert=client_cert, max_retries=1) as client:
        with pytest.raises((MeshTLSError, MeshTransientError)) as raised:
            client.handshake()
    assert isinstance(raised.value, MeshTLSError) or "client certificate" in str(raised.value)


def _pem_bytes(paths: tuple[str, str]) -> tuple[bytes, bytes]:
    return Path(paths[0]).read_bytes(), Path(paths[1]).read_bytes()


@pytest.mark.parametrize("environment", ["clean", "hostile"])
def test_it_does_mutual_tls_from_pem_bytes_without_writing_a_file(
    mtls_sandbox, pki, environment, request, monkeypatch, tmp_path
):
    if environment == "hostile":
        request.getfixturevalue("hostile_environment")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # any temporary file would land here
    ca_pem = Path(pki.ca).read_bytes()
    with _client(mtls_sandbox.url, verify=ca_pem, cert=_pem_bytes(pki.client)) as client:
        assert client.handshake().mailbox_id == "X26ABC1"
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_an_untrusted_server_with_a_ca_given_as_bytes(tls_sandbox, pki):
    with _client(tls_sandbox.url, verify=Path(pki.other_ca).read_bytes()) as client:
        with pytest.raises(MeshTLSError):
            client.handshake()


@pytest.mark.parametrize(
    "cert",
    [(b"not pem", b"not pem"), ("client", b"-----BEGIN"), "mismatched"],
    ids=["not-pem", "mixed", "key-of-another-cert"],
)
def test_it_says_what_is_wrong_with_pem_bytes_before_any_request(pki, cert):
    if cert == "mismatched":
        cert = (_pem_bytes(pki.client)[0], _pem_bytes(pki.stranger)[1])
    elif cert[0] == "client":
        cert = (pki.client[0], cert[1])
    with pytest.raises(MeshCertificateError) as raised:
        _client("https://localhost:1", cert=cert)
    assert "PEM" in str(raised.value) or "paths" in str(raised.value)
