"""Error bodies of every shape, status mapping, and the transient/retryable flags."""

from __future__ import annotations

import pytest
import responses

from meshcore import (
    MeshAuthenticationError,
    MeshChunkLockedError,
    MeshError,
    MeshGoneError,
    MeshNotFoundError,
    MeshRateLimitedError,
    MeshSendOutcomeUnknown,
    MeshSendRejectedError,
    MeshTLSError,
    MeshTransientError,
    MeshValidationError,
)
from meshcore.errors import parse_error_body
from tests.meshcore.helpers import mailbox_url, unit_client


def test_it_reads_v1_error_bodies():
    body = b'{"messageID": "M1", "errorEvent": "SEND", "errorCode": "12", "errorDescription": "Unregistered to address"}'
    parsed = parse_error_body(body)
    assert (parsed.event, parsed.code, parsed.description, parsed.message_id) == (
        "SEND",
        "12",
        "Unregistered to address",
        "M1",
    )


def test_it_reads_v2_error_bodies():
    body = '{"message_id": "M2", "detail": [{"event": "RECEIVE", "code": "20", "msg": "Message does not exist"}]}'
    parsed = parse_error_body(body)
    assert (parsed.event, parsed.code, parsed.description, parsed.message_id) == (
        "RECEIVE",
        "20",
        "Message does not exist",
        "M2",
    )


def test_it_reads_validation_bodies_with_the_failing_field():
    body = b'{"detail": [{"type": "missing", "loc": ["header", "mex-workflowid"], "msg": "Field required"}]}'
    assert parse_error_body(body).description == "Field required (header: mex-workflowid)"


def test_it_reads_generic_and_string_detail_bodies():
    assert parse_error_body(
        b'{"internal_id": "x", "message": "An internal error occurred."}'
    ).description == ("An internal error occurred.")
    assert parse_error_body(b'{"detail": "Not Found"}').description == "Not Found"
    assert parse_error_body(b'"just a string"').description == "just a string"
    assert parse_error_body(b"[1, 2]").description is None


def test_it_reads_xml_soap_and_html_bodies():
    soap = b"""<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
    <soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Spine is down</faultstring>
    </soap:Fault></soap:Body></soap:Envelope>"""
    assert parse_error_body(soap).description == "Spine is down"
    html = b"<html><head><title>502</title></head><body><h1>Bad Gateway</h1></body></html>"
    assert parse_error_body(html).description == "502 Bad Gateway"


def test_it_copes_with_empty_and_undecodable_bodies():
    assert parse_error_body(b"") == parse_error_body(None) == parse_error_body(b"   ")
    assert parse_error_body(b"").description is None
    assert "\ufffd" in parse_error_body(b"\xff\xfe oops").description
    assert len(parse_error_body(b"x" * 5000).description) <= 300


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (400, MeshValidationError, False),
        (403, MeshAuthenticationError, False),
        (404, MeshNotFoundError, False),
        (410, MeshGoneError, False),
        (417, MeshSendRejectedError, False),
        (422, MeshValidationError, False),
        (423, MeshChunkLockedError, False),
        (500, MeshTransientError, True),
        (503, MeshTransientError, True),
        (418, MeshError, False),
    ],
)
def test_it_maps_statuses_to_the_hierarchy(status, error, transient):
    client = unit_client(max_retries=0)
    with responses.RequestsMock() as mock:
        mock.get(mailbox_url("count"), status=status, json={"message": "nope"})
        with pytest.raises(error) as raised:
            client.inbox_count()
    assert type(raised.value) is error
    assert raised.value.status == status
    assert raised.value.is_transient is transient
    assert raised.value.description == "nope"


def test_it_explains_a_bare_403():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(mailbox_url("count"), status=403, body=b"")
        with pytest.raises(MeshAuthenticationError, match="password and shared key"):
            client.inbox_count()


def test_it_keeps_one_hierarchy_with_useful_flags():
    assert issubclass(MeshValidationError, ValueError)
    assert issubclass(MeshRateLimitedError, MeshTransientError)
    outcome_unknown = MeshSendOutcomeUnknown("maybe sent")
    assert outcome_unknown.is_transient and not outcome_unknown.retryable
    assert MeshTransientError("x").retryable
    assert not MeshTLSError("bad cert").is_transient
    error = MeshSendRejectedError(
        "Unregistered to address", status=417, event="SEND", code="12", message_id="M1"
    )
    assert str(error) == "Unregistered to address (HTTP 417, MESH SEND/12, message M1)"
