"""Request shape: Accept, client identification, mailbox case, send and chunk headers, paging."""

from __future__ import annotations

import platform

import pytest
import responses
from responses.registries import OrderedRegistry

from meshcore import MeshClient, MeshProtocolError, __version__
from tests.meshcore.helpers import BASE, check_token, mailbox_url, unit_client
from tests.sandbox import PASSWORD, SHARED_KEY


def test_it_sends_exactly_the_v2_accept_header_and_a_user_agent_on_every_request():
    client = unit_client(application_name="neomesh")
    with responses.RequestsMock() as mock:
        mock.post(mailbox_url(), status=200)
        mock.get(mailbox_url("count"), json={"count": 3})
        mock.get(f"{BASE}/messageexchange/_ping", json={"status": "running"})
        client.handshake()
        assert client.inbox_count() == 3
        client.ping()
        requests_sent = [call.request for call in mock.calls]
    for request in requests_sent:
        assert request.headers["Accept"] == "application/vnd.mesh.v2+json"
        assert request.headers["Accept-Encoding"] == "gzip"
        user_agent = request.headers["User-Agent"]
        assert user_agent.startswith(f"neomesh;meshcore;{__version__};N/A;")
        assert platform.system() in user_agent


def test_it_sends_client_headers_on_handshake():
    client = unit_client(application_name="neomesh")
    with responses.RequestsMock() as mock:
        mock.post(mailbox_url(), status=200, headers={"Date": "Mon, 23 Nov 2026 10:00:00 GMT"})
        result = client.handshake()
        headers = mock.calls[0].request.headers
    assert headers["mex-ClientVersion"] == f"neomesh;meshcore=={__version__}"
    assert headers["mex-OSName"] == platform.system()
    assert headers["mex-OSVersion"].startswith(platform.release())
    assert headers["mex-OSArchitecture"] == platform.machine()
    assert headers["mex-JavaVersion"] == "N/A"
    check_token(headers["Authorization"])
    assert result.mailbox_id == "X26ABC1"
    assert result.server_time is not None and result.clock_skew_seconds is not None


def test_it_upper_cases_the_mailbox_in_the_path_and_the_token():
    client = MeshClient(BASE, "x26abc1", PASSWORD, SHARED_KEY)
    with responses.RequestsMock() as mock:
        mock.get(mailbox_url("count"), json={"count": 0})
        client.inbox_count()
        request = mock.calls[0].request
    assert "/messageexchange/X26ABC1/count" in request.url
    check_token(request.headers["Authorization"], mailbox="X26ABC1")


def test_it_does_not_authenticate_ping():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/messageexchange/_ping", json={"status": "running"})
        assert client.ping() == {"status": "running"}
        assert "Authorization" not in mock.calls[0].request.headers


def test_it_puts_all_metadata_on_the_first_post_of_a_single_chunk_message():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.post(mailbox_url("outbox"), status=202, json={"message_id": "M1"})
        client.send(
            "x26abc2",
            "PATH_REPORT",
            b"a,b\n1,2\n",
            filename="results.csv",
            local_id="batch-7",
            subject="Results",
            content_type="text/csv",
            checksum="sha256:ab12",
            partner_id="P1",
            encrypted=False,
            content_compressed=False,
        )
        headers = mock.calls[0].request.headers
    assert headers["mex-To"] == "X26ABC2"
    assert headers["mex-WorkflowID"] == "PATH_REPORT"
    assert headers["mex-Chunk-Range"] == "1:1"
    assert headers["Content-Type"] == "text/csv"
    assert headers["mex-Content-Type"] == "text/csv"
    assert headers["mex-FileName"] == "results.csv"
    assert headers["mex-LocalID"] == "batch-7"
    assert headers["mex-Subject"] == "Results"
    assert headers["mex-Content-Checksum"] == "sha256:ab12"
    assert headers["mex-PartnerID"] == "P1"
    assert headers["mex-Content-Encrypted"] == "N"
    assert headers["mex-Content-Compressed"] == "N"
    assert headers["Content-Encoding"] == "gzip"


def test_it_sends_chunks_in_order_with_octet_stream_and_consistent_encoding():
    data = b"0123456789" * 1000  # 10,000 bytes in 3,000-byte chunks: 4 chunks
    client = unit_client(chunk_size=3000)
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        mock.post(mailbox_url("outbox"), status=202, json={"message_id": "M1"})
        for number in (2, 3, 4):
            mock.post(mailbox_url("outbox", "M1", str(number)), status=202, body="null")
        client.send("X26ABC2", "WF", data, content_type="text/plain")
        calls = [call.request for call in mock.calls]
    assert [request.url.rsplit("/", 1)[-1] for request in calls] == ["outbox", "2", "3", "4"]
    assert [request.headers["mex-Chunk-Range"] for request in calls] == ["1:4", "2:4", "3:4", "4:4"]
    assert {request.headers["Content-Encoding"] for request in calls} == {"gzip"}
    assert {request.headers["Content-Type"] for request in calls} == {"application/octet-stream"}
    assert calls[0].headers["mex-Content-Type"] == "text/plain"
    assert "mex-To" not in calls[1].headers


def test_it_sends_uncompressed_bodies_with_a_content_length():
    client = unit_client()
    bodies = []

    def accept(request):
        bodies.append(b"".join(request.body))
        return 202, {}, '{"message_id": "M1"}'

    with responses.RequestsMock() as mock:
        mock.add_callback("POST", mailbox_url("outbox"), callback=accept)
        client.send("X26ABC2", "WF", b"plain bytes", compress=False)
        request = mock.calls[0].request
    assert "Content-Encoding" not in request.headers
    assert request.headers["Content-Length"] == "11"
    assert bodies == [b"plain bytes"]


def test_it_follows_server_relative_next_links_across_pages():
    client = unit_client()
    first = [f"A{n}" for n in range(500)]
    second = [f"B{n}" for n in range(500)]
    third = ["C0", "C1"]
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        mock.get(
            mailbox_url("inbox"),
            json={
                "messages": first,
                "links": {"next": "/messageexchange/X26ABC1/inbox?continue_from=t1"},
            },
        )
        mock.get(
            mailbox_url("inbox") + "?continue_from=t1",
            json={
                "messages": second,
                "links": {"next": "/messageexchange/X26ABC1/inbox?continue_from=t2"},
            },
        )
        mock.get(mailbox_url("inbox") + "?continue_from=t2", json={"messages": third, "links": {}})
        ids = list(client.iter_inbox(workflow_filter="WF*"))
        urls = [call.request.url for call in mock.calls]
    assert ids == first + second + third
    assert "workflow_filter=WF%2A" in urls[0] and "max_results=500" in urls[0]
    assert urls[1] == f"{BASE}/messageexchange/X26ABC1/inbox?continue_from=t1"


def test_it_tolerates_v1_shapes_and_odd_content_types():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            f"{BASE}/messageexchange/endpointlookup/X26/WF",
            json={"query_id": "q", "results": [{"address": "X26ABC2", "description": "TESTMB2"}]},
            content_type="text/plain",
        )
        mock.get(
            mailbox_url("outbox", "tracking"),
            json={
                "messageId": "M1",
                "status": "Accepted",
                "statusSuccess": "SUCCESS",
                "localId": "L",
            },
        )
        assert [tuple(ref) for ref in client.lookup("x26", "WF")] == [("X26ABC2", "TESTMB2")]
        status = client.track("M1")
    assert (status.status, status.status_success, status.local_id) == ("accepted", True, "L")


def test_it_refuses_to_follow_a_next_link_to_another_server():
    client = unit_client()
    with responses.RequestsMock() as mock:
        mock.get(
            mailbox_url("inbox"),
            json={"messages": ["A"], "links": {"next": "https://elsewhere.example/steal"}},
        )
        with pytest.raises(MeshProtocolError, match="another server"):
            list(client.iter_inbox())
