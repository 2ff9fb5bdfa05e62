"""on_exchange: one redacted record per HTTP attempt, never a body, never a broken transfer."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from meshcore import Exchange, MeshSendRejectedError, MeshTransientError
from meshcore.exchanges import redact_authorization
from tests.meshcore.helpers import BASE, MAILBOX, mailbox_url, unit_client
from tests.sandbox import PASSWORD, SHARED_KEY


def _recording_client(**kwargs):
    seen: list[Exchange] = []
    return unit_client(on_exchange=seen.append, **kwargs), seen


def _no_secrets(exchange: Exchange) -> None:
    text = json.dumps(exchange.as_dict())
    assert PASSWORD not in text and SHARED_KEY not in text
    authorization = exchange.request_headers.get("Authorization")
    if authorization is not None:
        assert authorization == f"NHSMESH {MAILBOX}:<redacted>"


@responses.activate
def test_it_reports_the_handshake_with_client_headers_and_a_redacted_token():
    responses.post(mailbox_url(), status=200, headers={"Date": "Tue, 01 Dec 2026 10:00:00 GMT"})
    client, seen = _recording_client()
    client.handshake()
    assert len(seen) == 1
    exchange = seen[0]
    assert (exchange.method, exchange.path, exchange.status) == (
        "POST",
        f"/messageexchange/{MAILBOX}",
        200,
    )
    assert exchange.ok and exchange.error == ""
    for header in ("mex-ClientVersion", "mex-OSName", "mex-OSVersion"):
        assert exchange.request_headers[header]
    assert exchange.request_headers["Accept"] == "application/vnd.mesh.v2+json"
    assert exchange.elapsed_ms >= 0
    _no_secrets(exchange)
    assert BASE not in json.dumps(exchange.as_dict()), "paths carry no host"


def test_it_reports_every_attempt_of_a_retried_call():
    client, seen = _recording_client()
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        mock.get(mailbox_url("inbox"), status=503, body="<html>busy</html>")
        mock.get(mailbox_url("inbox"), status=503, body="<html>busy</html>")
        mock.get(mailbox_url("inbox"), json={"messages": ["A"], "links": {}})
        assert list(client.iter_inbox(page_size=10)) == ["A"]
    assert [e.status for e in seen] == [503, 503, 200]
    assert all(e.error for e in seen[:2]) and not seen[2].error
    assert {e.query for e in seen} == {"max_results=10"}
    for exchange in seen:
        _no_secrets(exchange)


@responses.activate
def test_it_reports_a_rejected_send_with_the_mesh_code():
    body = {"detail": [{"event": "SEND", "code": "12", "msg": "Unregistered to address"}]}
    responses.post(mailbox_url("outbox"), status=417, json=body)
    client, seen = _recording_client()
    with pytest.raises(MeshSendRejectedError):
        client.send("X26NOBODY", "TEST_WORKFLOW", b"hello")
    (exchange,) = seen
    assert exchange.status == 417
    assert "SEND/12" in exchange.error
    assert exchange.request_headers["mex-To"] == "X26NOBODY"
    assert exchange.request_headers["Content-Encoding"] == "gzip"
    _no_secrets(exchange)


@responses.activate
def test_it_reports_a_connection_failure_without_a_status():
    responses.get(mailbox_url("count"), body=requests.ConnectionError("refused"))
    client, seen = _recording_client(max_retries=0)
    with pytest.raises(MeshTransientError):
        client.inbox_count()
    (exchange,) = seen
    assert exchange.status is None and exchange.error and not exchange.ok
    assert exchange.request_headers["Authorization"] == f"NHSMESH {MAILBOX}:<redacted>"
    assert "User-Agent" in exchange.request_headers


@responses.activate
def test_it_keeps_mex_and_content_headers_but_never_reads_the_body_for_the_hook():
    payload = b"x" * 5000
    responses.get(
        mailbox_url("inbox", "MSG1"),
        body=payload,
        headers={
            "mex-MessageID": "MSG1",
            "mex-MessageType": "DATA",
            "mex-From": "X26ABC2",
            "Set-Cookie": "session=secret",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(payload)),
        },
    )
    bodies_read_when_reported = []
    into = io.BytesIO()

    def hook(exchange: Exchange) -> None:
        bodies_read_when_reported.append(into.tell())
        seen.append(exchange)

    seen: list[Exchange] = []
    client = unit_client(on_exchange=hook)
    info = client.download("MSG1", into)
    assert into.getvalue() == payload and info.size == len(payload)
    assert bodies_read_when_reported == [0], "reported before the body was streamed"
    headers = {k.lower(): v for k, v in seen[0].response_headers.items()}
    assert headers["mex-messageid"] == "MSG1" and headers["mex-from"] == "X26ABC2"
    assert headers["content-length"] == "5000"
    assert "set-cookie" not in headers


@responses.activate
def test_it_never_breaks_a_transfer_when_the_callback_raises(caplog):
    responses.get(mailbox_url("count"), json={"count": 3})

    def broken(exchange: Exchange) -> None:
        raise RuntimeError("evidence store is down")

    client = unit_client(on_exchange=broken)
    with caplog.at_level(logging.WARNING, logger="meshcore"):
        assert client.inbox_count() == 3
    assert "on_exchange callback failed" in caplog.text
    assert PASSWORD not in caplog.text and SHARED_KEY not in caplog.text


def test_it_redacts_any_authorization_shape():
    assert redact_authorization("NHSMESH X26ABC1:n:1:202601011200:abc") == (
        "NHSMESH X26ABC1:<redacted>"
    )
    assert redact_authorization("Bearer secret-token") == "<redacted>"
    assert redact_authorization("") == "<redacted>"
