"""Bad input fails with a clear meshcore error before any HTTP request is made."""

from __future__ import annotations

import io

import pytest
import responses

from meshcore import (
    MAX_CHUNK_SIZE,
    MeshCertificateError,
    MeshClient,
    MeshPayloadTypeError,
    MeshValidationError,
)
from meshcore.sizing import max_chunk_size
from meshcore.validation import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_REQUEST_BYTES,
    MIN_LIVE_CHUNK_SIZE,
)
from tests.meshcore.helpers import BASE, unit_client
from tests.sandbox import PASSWORD, SHARED_KEY


@pytest.fixture
def no_http():
    """Any request at all fails the test (responses refuses unregistered calls)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        assert len(mock.calls) == 0


@pytest.mark.parametrize(
    "mailbox_id", ["", "X2", "X26 ABC1", "X26:ABC1", "../X26", "A" * 40, None, 123]
)
def test_it_rejects_a_malformed_mailbox_id(no_http, mailbox_id):
    with pytest.raises(MeshValidationError, match="mailbox id"):
        MeshClient(BASE, mailbox_id, PASSWORD, SHARED_KEY)


def test_it_rejects_a_malformed_recipient(no_http):
    with pytest.raises(MeshValidationError, match="recipient mailbox id"):
        unit_client().send("not a mailbox!", "WF", b"data")


@pytest.mark.parametrize(("password", "key"), [("", SHARED_KEY), (PASSWORD, ""), (PASSWORD, None)])
def test_it_requires_a_password_and_a_shared_key_with_no_default(no_http, password, key):
    with pytest.raises(MeshValidationError, match="required"):
        MeshClient(BASE, "X26ABC1", password, key)


@pytest.mark.parametrize(
    "url", ["msg.intspineservices.nhs.uk", "ftp://host", "https://", "https://h/?q=1"]
)
def test_it_rejects_a_bad_base_url(no_http, url):
    with pytest.raises(MeshValidationError, match="base_url"):
        MeshClient(url, "X26ABC1", PASSWORD, SHARED_KEY)


@pytest.mark.parametrize("data", [b"", bytearray(), io.BytesIO(b""), iter([]), [b"", b""]])
def test_it_rejects_an_empty_payload(no_http, data):
    with pytest.raises(MeshValidationError, match="empty"):
        unit_client().send("X26ABC2", "WF", data)


def test_it_rejects_a_str_payload_as_a_type_error(no_http):
    with pytest.raises(MeshPayloadTypeError, match="encode it first") as raised:
        unit_client().send("X26ABC2", "WF", "some text")
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, MeshValidationError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (io.StringIO("text"), "binary mode"),
        ([b"ok", "not bytes"], "yielded a str"),
        ([b"ok", 42], "yielded int"),
        (12345, "not int"),
    ],
)
def test_it_rejects_other_payload_types(no_http, data, message):
    with pytest.raises(MeshPayloadTypeError, match=message):
        unit_client().send("X26ABC2", "WF", data)


@pytest.mark.parametrize("size", [0, -1, MAX_CHUNK_SIZE + 1, 200_000_000, 1.5, True, "20MiB"])
def test_it_rejects_a_chunk_size_out_of_range(no_http, size):
    with pytest.raises(MeshValidationError, match="chunk_size"):
        MeshClient(BASE, "X26ABC1", PASSWORD, SHARED_KEY, chunk_size=size)
    with pytest.raises(MeshValidationError, match="chunk_size"):
        unit_client().send("X26ABC2", "WF", b"data", chunk_size=size)


def test_it_defaults_to_the_internet_request_limit_and_chunks_the_live_service_accepts():
    client = unit_client()
    assert client.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 20_000_000
    assert client.chunk_size is None, "no fixed layout: one request whenever the message fits"
    assert max_chunk_size() >= MIN_LIVE_CHUNK_SIZE >= 5_000_000
    assert DEFAULT_CHUNK_SIZE == 20 * 1024 * 1024 > max_chunk_size(), "20 MiB may not fit"


def test_it_rejects_an_unreadable_certificate(no_http, tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(MeshCertificateError, match="does not exist or cannot be read"):
        MeshClient(BASE, "X26ABC1", PASSWORD, SHARED_KEY, cert=(str(missing), str(missing)))
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")
    with pytest.raises(MeshCertificateError, match="cannot use the client certificate"):
        MeshClient(BASE, "X26ABC1", PASSWORD, SHARED_KEY, cert=(str(garbage), str(garbage)))
    with pytest.raises(MeshCertificateError, match="CA bundle"):
        MeshClient(BASE, "X26ABC1", PASSWORD, SHARED_KEY, verify=str(missing))
    with pytest.raises(MeshCertificateError, match=r"\(cert_path, key_path\)"):
        MeshClient(BASE, "X26ABC1", PASSWORD, SHARED_KEY, cert=str(garbage))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("workflow_id", "WF\r\nX-Injected: 1", "control characters"),
        ("subject", "line one\nline two", "control characters"),
        ("local_id", "tab\there", "control characters"),
        ("workflow_id", "https://evil.example/wf", "http"),
        ("filename", "http://x/file.csv", "http"),
        ("local_id", "x" * 301, "MESH allows 300"),
        ("subject", "s" * 501, "MESH allows 500"),
        ("workflow_id", "W" * 301, "MESH allows 300"),
        ("checksum", "md5=abc", "letters, digits"),
        ("checksum", "sha256:" + "a" * 100, "MESH allows 100"),
        ("filename", "résumé.csv", "ASCII"),
        ("workflow_id", "  ", "empty"),
    ],
)
def test_it_rejects_bad_header_values(no_http, field, value, message):
    kwargs = {"workflow_id": "WF", field: value}
    with pytest.raises(MeshValidationError, match=message):
        unit_client().send("X26ABC2", data=b"data", **kwargs)


def test_it_accepts_a_valid_checksum_alphabet(no_http):
    from meshcore.validation import header_value

    assert header_value("mex-Content-Checksum", "sha256:AB12-cd/34 ef") == "sha256:AB12-cd/34 ef"


@pytest.mark.parametrize("page_size", [9, 5001, 0, "500"])
def test_it_rejects_a_bad_page_size(no_http, page_size):
    with pytest.raises(MeshValidationError, match="page_size"):
        list(unit_client().iter_inbox(page_size=page_size))


@pytest.mark.parametrize("message_id", ["", "  ", "a/b", "id\n"])
def test_it_rejects_bad_message_ids(no_http, message_id):
    with pytest.raises(MeshValidationError, match="message id"):
        unit_client().download(message_id, io.BytesIO())


@pytest.mark.parametrize("resume_from", [("M1", 0), ("M1", 4), ("M1",), "M1", ("M1", True)])
def test_it_rejects_impossible_resume_points(no_http, resume_from):
    with pytest.raises(MeshValidationError, match="resume_from"):
        unit_client(chunk_size=10).send("X26ABC2", "WF", b"x" * 30, resume_from=resume_from)


def test_it_rejects_bad_tuning_values(no_http):
    for kwargs in ({"compress_level": 10}, {"max_retries": -1}, {"compress_workers": 0}):
        with pytest.raises(MeshValidationError):
            unit_client(**kwargs)
    with pytest.raises(MeshValidationError, match="application_name"):
        unit_client(application_name="a;b")


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("9434765919", True),
        ("4010232137", True),
        ("9434765918", False),
        ("1234567890", False),
        ("943476591", False),
        ("94347659190", False),
        ("943476591a", False),
    ],
)
def test_it_checks_an_nhs_numbers_check_digit(digits, valid):
    from meshcore import nhs_number_valid

    assert nhs_number_valid(digits) is valid


def test_a_demographic_mex_to_keeps_its_case_and_is_checked():
    from meshcore import headers
    from meshcore.errors import MeshValidationError

    sent = headers.send_metadata(
        to="9434765919_19800312_McDonald", workflow_id="WF", demographic=True
    )
    assert sent["mex-To"] == "9434765919_19800312_McDonald"
    with pytest.raises(MeshValidationError, match="check digit"):
        headers.send_metadata(to="9434765918", workflow_id="WF", demographic=True)
    with pytest.raises(MeshValidationError, match="not a demographic address"):
        headers.send_metadata(to="X26ABC1", workflow_id="WF", demographic=True)
    assert headers.send_metadata(to="x26abc1", workflow_id="WF")["mex-To"] == "X26ABC1"
