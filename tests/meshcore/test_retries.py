"""Retries, backoff and the duplicate-send policy, with `responses` for what the sandbox cannot do."""

from __future__ import annotations

import io
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from meshcore import (
    MeshAuthenticationError,
    MeshChunkLockedError,
    MeshClient,
    MeshNotFoundError,
    MeshRateLimitedError,
    MeshSendOutcomeUnknown,
    MeshSendRejectedError,
    MeshTransientError,
    MeshValidationError,
)
from meshcore.retry import RetryPolicy, parse_retry_after
from tests.meshcore.helpers import Sleeps, check_token, mailbox_url, unit_client
from tests.sandbox import PASSWORD, SHARED_KEY

INBOX = mailbox_url("inbox")
OUTBOX = mailbox_url("outbox")


def _ordered(all_fired: bool = True):
    return responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=all_fired)


def _refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused: nothing was sent."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, OUTBOX, reason))


def _dropped() -> requests.ConnectionError:
    """The server closed the connection after the request went out: outcome unknown."""
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    )


def test_it_retries_503_bursts_with_a_fresh_valid_token_each_time():
    client = unit_client()
    with _ordered() as mock:
        for _ in range(3):
            mock.get(INBOX, status=503, body="<html>busy</html>")
        mock.get(INBOX, json={"messages": ["A"], "links": {}})
        assert list(client.iter_inbox()) == ["A"]
        headers = [call.request.headers["Authorization"] for call in mock.calls]
    assert len(headers) == 4
    assert len(set(headers)) == 4, "every attempt needs its own token"
    nonces = {check_token(header)[0] for header in headers}
    assert len(nonces) == 4
    assert len(client._sleep) == 3


def test_it_backs_off_exponentially_with_jitter():
    policy = RetryPolicy(max_retries=5, backoff_factor=1.0, max_backoff=6.0)
    error = MeshTransientError("busy", status=503)
    delays = [policy.delay(attempt, error) for attempt in range(5)]
    for attempt, delay in enumerate(delays):
        ceiling = min(6.0, 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(5, error) is None


def test_it_honours_retry_after_seconds_on_429():
    client = unit_client()
    with _ordered() as mock:
        mock.get(INBOX, status=429, headers={"Retry-After": "7"})
        mock.get(INBOX, json={"messages": [], "links": {}})
        assert list(client.iter_inbox()) == []
    assert client._sleep == [7.0]


def test_it_honours_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    client = unit_client()
    with _ordered() as mock:
        mock.get(INBOX, status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
        mock.get(INBOX, json={"messages": [], "links": {}})
        list(client.iter_inbox())
    assert 25 <= client._sleep[0] <= 31


def test_it_parses_retry_after_leniently():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_it_gives_up_when_retry_after_is_too_long_and_says_when_to_come_back():
    client = unit_client(max_retry_after=60)
    with _ordered() as mock:
        mock.get(INBOX, status=429, headers={"Retry-After": "3600"})
        with pytest.raises(MeshRateLimitedError) as raised:
            list(client.iter_inbox())
    assert raised.value.retry_after == 3600
    assert raised.value.is_transient and raised.value.retryable
    assert client._sleep == []


def test_it_respects_max_retries():
    client = unit_client(max_retries=2)
    with _ordered() as mock:
        for _ in range(3):
            mock.get(INBOX, status=502)
        with pytest.raises(MeshTransientError) as raised:
            list(client.iter_inbox())
        assert len(mock.calls) == 3
    assert raised.value.status == 502
    assert len(client._sleep) == 2


def test_it_does_not_retry_when_max_retries_is_zero():
    client = unit_client(max_retries=0)
    with _ordered() as mock:
        mock.get(INBOX, status=504)
        with pytest.raises(MeshTransientError):
            list(client.iter_inbox())
        assert len(mock.calls) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, MeshValidationError), (403, MeshAuthenticationError), (404, MeshNotFoundError)],
)
def test_it_never_retries_other_4xx(status, error):
    client = unit_client()
    with _ordered() as mock:
        mock.put(mailbox_url("inbox", "M1", "status", "acknowledged"), status=status)
        with pytest.raises(error):
            client.acknowledge("M1")
        assert len(mock.calls) == 1
    assert client._sleep == []


def test_it_does_not_retry_a_500():
    client = unit_client()
    with _ordered() as mock:
        mock.get(INBOX, status=500, body="<soap:Fault><faultstring>boom</faultstring></soap:Fault>")
        with pytest.raises(MeshTransientError, match="boom"):
            list(client.iter_inbox())
        assert len(mock.calls) == 1


def test_it_retries_dropped_connections_on_get_and_put():
    client = unit_client()
    ack = mailbox_url("inbox", "M1", "status", "acknowledged")
    with _ordered() as mock:
        mock.put(ack, body=_dropped())
        mock.put(ack, body=requests.ReadTimeout("read timed out"))
        mock.put(ack, status=200)
        client.acknowledge("M1")
        assert len(mock.calls) == 3
    assert len(client._sleep) == 2


def test_it_maps_exhausted_connection_failures_to_transient():
    client = unit_client(max_retries=1)
    with _ordered() as mock:
        mock.get(INBOX, body=_dropped())
        mock.get(INBOX, body=_dropped())
        with pytest.raises(MeshTransientError) as raised:
            list(client.iter_inbox())
    assert not isinstance(raised.value, MeshSendOutcomeUnknown)
    assert raised.value.retryable


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 502}, id="502"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="read-timeout"),
        pytest.param({"body": _dropped()}, id="dropped-after-sending"),
    ],
)
def test_it_never_retries_the_first_post_once_it_may_have_arrived(failure):
    client = unit_client()
    with _ordered(all_fired=False) as mock:
        mock.post(OUTBOX, **failure)
        mock.post(OUTBOX, status=202, json={"message_id": "DUPLICATE"})
        with pytest.raises(MeshSendOutcomeUnknown) as raised:
            client.send("X26ABC2", "WF", b"payload", local_id="ref-1")
        assert len(mock.calls) == 1
    assert raised.value.is_transient
    assert not raised.value.retryable, "the caller must reconcile, not blindly resend"
    assert client._sleep == []


def test_it_retries_the_first_post_when_the_connection_was_refused():
    client = unit_client()
    with _ordered() as mock:
        mock.post(OUTBOX, body=_refused())
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        assert client.send("X26ABC2", "WF", b"payload") == "M1"
        assert len(mock.calls) == 2


def test_it_retries_the_first_post_after_429():
    client = unit_client()
    with _ordered() as mock:
        mock.post(OUTBOX, status=429, headers={"Retry-After": "2"})
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        assert client.send("X26ABC2", "WF", b"payload") == "M1"
    assert client._sleep == [2.0]


def test_it_reports_a_rejected_first_post_without_retrying():
    client = unit_client()
    body = {"detail": [{"event": "SEND", "code": "12", "msg": "Unregistered to address"}]}
    with _ordered() as mock:
        mock.post(OUTBOX, status=417, json=body)
        with pytest.raises(MeshSendRejectedError) as raised:
            client.send("X26ABC9", "WF", b"payload")
        assert len(mock.calls) == 1
    assert (raised.value.code, raised.value.event) == ("12", "SEND")


def test_it_retries_later_chunks_re_reading_them_from_the_source():
    data = bytes(range(256)) * 40  # 10,240 bytes: 3 chunks of 4 KiB
    bodies: dict[int, list[bytes]] = {2: [], 3: []}

    def chunk(number: int, status: int, body: str = "null"):
        def callback(request):
            bodies[number].append(b"".join(request.body))
            assert request.headers["mex-Chunk-Range"] == f"{number}:3"
            return status, {}, body

        return callback

    client = unit_client(chunk_size=4096)
    progress = []
    with _ordered() as mock:
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        mock.add_callback("POST", mailbox_url("outbox", "M1", "2"), callback=chunk(2, 503))
        mock.add_callback("POST", mailbox_url("outbox", "M1", "2"), callback=chunk(2, 202))
        mock.add_callback("POST", mailbox_url("outbox", "M1", "3"), callback=chunk(3, 504))
        mock.add_callback("POST", mailbox_url("outbox", "M1", "3"), callback=chunk(3, 202, ""))
        source = io.BytesIO(data)
        message_id = client.send(
            "X26ABC2", "WF", source, compress=False, on_progress=lambda *a: progress.append(a)
        )
        tokens = [call.request.headers["Authorization"] for call in mock.calls]
    assert message_id == "M1"
    assert bodies[2] == [data[4096:8192]] * 2, "the retried chunk is re-read, identical"
    assert bodies[3] == [data[8192:]] * 2
    assert progress == [(1, 3, "M1"), (2, 3, "M1"), (3, 3, "M1")]
    assert len(set(tokens)) == len(tokens) == 5


def test_it_takes_a_locked_last_chunk_after_a_lost_answer_as_delivered_when_tracking_agrees():
    client = unit_client(chunk_size=4096)
    locked = {"detail": [{"event": "SEND", "code": "23", "msg": "message already finalised"}]}
    progress = []
    with _ordered() as mock:
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        mock.post(mailbox_url("outbox", "M1", "2"), body=_dropped())  # arrived; answer lost
        mock.post(mailbox_url("outbox", "M1", "2"), status=423, json=locked)
        mock.get(mailbox_url("outbox", "tracking"), json={"message_id": "M1", "status": "accepted"})
        assert (
            client.send("X26ABC2", "WF", b"x" * 5000, on_progress=lambda *a: progress.append(a))
            == "M1"
        )
    assert progress == [(1, 2, "M1"), (2, 2, "M1")]


def test_it_still_reports_a_locked_chunk_when_tracking_says_the_message_is_not_complete():
    client = unit_client(chunk_size=4096)
    with _ordered() as mock:
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        mock.post(mailbox_url("outbox", "M1", "2"), status=423)
        mock.get(mailbox_url("outbox", "tracking"), json={"message_id": "M1", "status": "error"})
        with pytest.raises(MeshChunkLockedError):
            client.send("X26ABC2", "WF", b"x" * 5000)


def test_it_stops_retrying_a_chunk_after_max_retries():
    client = unit_client(chunk_size=4096, max_retries=1)
    with _ordered() as mock:
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        mock.post(mailbox_url("outbox", "M1", "2"), status=503)
        mock.post(mailbox_url("outbox", "M1", "2"), status=503)
        with pytest.raises(MeshTransientError) as raised:
            client.send("X26ABC2", "WF", b"x" * 5000)
        assert len(mock.calls) == 3
    assert raised.value.status == 503
    assert not isinstance(raised.value, MeshSendOutcomeUnknown)


def test_it_retries_a_refused_connection_to_a_real_closed_port_then_gives_up():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens
    sleeps = Sleeps()
    client = MeshClient(
        f"http://127.0.0.1:{port}", "X26ABC1", PASSWORD, SHARED_KEY, sleep=sleeps, max_retries=2
    )
    with pytest.raises(MeshTransientError) as raised:
        client.send("X26ABC2", "WF", b"payload")
    assert not isinstance(raised.value, MeshSendOutcomeUnknown), "refused: certainly not sent"
    assert len(sleeps) == 2


class _ShortBodyServer:
    """A real HTTP server on loopback whose answers promise more body than they send."""

    def __init__(self, status_line: str):
        self.status_line = status_line
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests += 1
                conn.sendall(
                    f"HTTP/1.1 {self.status_line}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 200\r\n\r\n".encode()
                    + b'{"message_id": "M'
                )

    def close(self) -> None:
        self.sock.close()


def test_it_retries_a_read_whose_answer_breaks_off_then_gives_up_with_a_mesh_error():
    server = _ShortBodyServer("200 OK")
    try:
        client = MeshClient(
            server.url, "X26ABC1", PASSWORD, SHARED_KEY, sleep=Sleeps(), max_retries=1
        )
        with pytest.raises(MeshTransientError) as raised:
            list(client.iter_inbox())
    finally:
        server.close()
    assert not isinstance(raised.value, MeshSendOutcomeUnknown)
    assert server.requests == 2


def test_it_never_repeats_a_first_post_whose_answer_breaks_off():
    server = _ShortBodyServer("202 Accepted")
    try:
        client = MeshClient(server.url, "X26ABC1", PASSWORD, SHARED_KEY, sleep=Sleeps())
        with pytest.raises(MeshSendOutcomeUnknown):
            client.send("X26ABC2", "WF", b"payload", local_id="ref-1")
    finally:
        server.close()
    assert server.requests == 1, "MESH may have created the message: never send it twice"


def test_it_asks_again_later_when_tracking_cannot_say_whether_a_locked_message_is_complete():
    client = unit_client(chunk_size=4096, max_retries=0)
    with _ordered() as mock:
        mock.post(OUTBOX, status=202, json={"message_id": "M1"})
        mock.post(mailbox_url("outbox", "M1", "2"), status=423)
        mock.get(mailbox_url("outbox", "tracking"), status=503)
        with pytest.raises(MeshTransientError) as raised:
            client.send("X26ABC2", "WF", b"x" * 5000)
    assert not isinstance(raised.value, MeshChunkLockedError)
